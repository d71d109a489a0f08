// A WAGI handler in AssemblyScript: parses the query string and answers a small HTML page
// listing its parameters, like query_rust.rs. WASI preview1 through imports declared here (the
// compiler has no WASI library of its own). Build: see modules/build.sh.

@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: u32, iovs: usize, count: u32, written: usize): u16;
@external("wasi_snapshot_preview1", "environ_sizes_get")
declare function environ_sizes_get(count: usize, size: usize): u16;
@external("wasi_snapshot_preview1", "environ_get")
declare function environ_get(pointers: usize, buffer: usize): u16;
@external("wasi_snapshot_preview1", "proc_exit")
declare function proc_exit(code: u32): void;

/** The value of environment variable `name`, or "". */
function getenv(name: string): string {
  const sizes = memory.data(8);
  environ_sizes_get(sizes, sizes + 4);
  const count = load<u32>(sizes);
  const size = load<u32>(sizes + 4);
  const pointers = heap.alloc(count * 4);
  const buffer = heap.alloc(size);
  environ_get(pointers, buffer);
  const prefix = name + "=";
  let found = "";
  for (let i: u32 = 0; i < count; i++) {
    const at = load<usize>(pointers + i * 4);
    let end = at;
    while (load<u8>(end) != 0) end++;
    const entry = String.UTF8.decodeUnsafe(at, end - at);
    if (entry.startsWith(prefix)) {
      found = entry.slice(prefix.length);
      break;
    }
  }
  heap.free(pointers);
  heap.free(buffer);
  return found;
}

/** Decodes `%XX` escapes and `+` (a space). */
function decode(part: string): string {
  let out = "";
  for (let i = 0; i < part.length; i++) {
    const c = part.charAt(i);
    if (c == "+") out += " ";
    else if (c == "%" && i + 2 < part.length) {
      const value = I32.parseInt(part.substr(i + 1, 2), 16);
      if (isNaN(<f64>value) || value < 0) out += c;
      else {
        out += String.fromCharCode(value);
        i += 2;
      }
    } else out += c;
  }
  return out;
}

/** Escapes text for HTML. */
function escape(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

/** Writes `text` to stdout as UTF-8. */
function print(text: string): void {
  const bytes = String.UTF8.encode(text);
  const iov = memory.data(16);
  store<usize>(iov, changetype<usize>(bytes));
  store<u32>(iov + 4, bytes.byteLength);
  fd_write(1, iov, 1, iov + 8);
}

export function _start(): void {
  const query = getenv("QUERY_STRING");
  let rows = "";
  let count = 0;
  const pairs = query.split("&");
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i];
    if (pair.length == 0) continue;
    const eq = pair.indexOf("=");
    const name = eq < 0 ? pair : pair.slice(0, eq);
    const value = eq < 0 ? "" : pair.slice(eq + 1);
    count++;
    rows += "<tr><td>" + escape(decode(name)) + "</td><td>" + escape(decode(value)) +
      "</td></tr>";
  }
  const body = "<!doctype html><title>query</title><h1>" + count.toString() +
    " parameters for " + escape(getenv("PATH_INFO")) + "</h1><table>" + rows + "</table>\n";
  print(
    "Content-Type: text/html; charset=utf-8\nContent-Length: " +
      String.UTF8.byteLength(body).toString() + "\n\n" + body,
  );
}

/** Aborts (the compiler's `abort`): a message on stderr would need more; exit 1. */
export function abort(_message: usize, _file: usize, _line: u32, _column: u32): void {
  proc_exit(1);
}

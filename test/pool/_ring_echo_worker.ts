/// <reference lib="deno.worker" />
// Reads its input ring with the blocking calls a guest's stdin uses and writes what it read
// to its output ring with the blocking calls of a guest's stdout, in small pieces, until the
// input ends; then closes the output.
import { ByteRing } from "../../src/pool/byte_ring.ts";

self.onmessage = (event: MessageEvent<{ input: SharedArrayBuffer; output: SharedArrayBuffer }>) => {
  const input = new ByteRing(event.data.input);
  const output = new ByteRing(event.data.output);
  const buffer = new Uint8Array(1000);
  for (;;) {
    const n = input.readSync(buffer, 0, buffer.length);
    if (n === 0) break;
    if (!output.writeSync(buffer, 0, n)) break;
  }
  output.close();
  self.postMessage("done");
};

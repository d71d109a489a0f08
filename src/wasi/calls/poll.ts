/**
 * `poll_oneoff`: waits on clocks and reports descriptor readiness.
 * @module
 */

import { Errno, errnoOf, WasiError } from "../errno.ts";
import { EventType, Rights } from "../constants.ts";
import { InputDescriptor } from "../descriptors.ts";
import { syscall } from "../syscall.ts";
import type { WasiState } from "../state.ts";
import type { EffectTable } from "../effects.ts";
import type { SnapshotLayout } from "../layout.ts";
import { clockNow } from "./clock_random.ts";

/** `subclockflags.subscription_clock_abstime`. */
const ABSTIME = 1;
const EVENT_SIZE = 32;

interface Event {
  userdata: bigint;
  error: number;
  type: number;
  nbytes: bigint;
}

/** What the polling call does beyond returning (see effects.ts). */
export const POLL_EFFECTS: EffectTable = {
  // It sleeps until the first clock when nothing else is ready.
  poll_oneoff: "blocking",
};

/** The polling call for `host`, with `layout`'s subscription records. */
export function pollCalls(host: WasiState, layout: SnapshotLayout) {
  const memory = host.memory;
  const { subscriptionSize, subscriptionClockAt: clockAt } = layout;

  return {
    poll_oneoff: syscall((inPtr: number, outPtr: number, count: number, resultPtr: number) => {
      if (count === 0) throw new WasiError(Errno.INVAL);
      const ready: Event[] = [];
      const clocks: { userdata: bigint; deadline: bigint; id: number }[] = [];
      for (let i = 0; i < count; i++) {
        const at = inPtr + i * subscriptionSize;
        const userdata = memory.u64(at);
        const type = memory.u8(at + 8);
        if (type === EventType.CLOCK) {
          const id = memory.u32(at + clockAt);
          const timeout = memory.u64(at + clockAt + 8);
          const flags = memory.u16(at + clockAt + 24);
          let deadline: bigint;
          try {
            deadline = flags & ABSTIME ? timeout : clockNow(id) + timeout;
          } catch (error) {
            ready.push({ userdata, error: errnoOf(error), type, nbytes: 0n });
            continue;
          }
          clocks.push({ userdata, deadline, id });
        } else if (type === EventType.FD_READ || type === EventType.FD_WRITE) {
          const fd = memory.u32(at + 16);
          let error: number = Errno.SUCCESS;
          let nbytes = 0n;
          try {
            const d = host.descriptor(fd);
            d.require(
              Rights.POLL_FD_READWRITE |
                (type === EventType.FD_READ ? Rights.FD_READ : Rights.FD_WRITE),
            );
            if (type === EventType.FD_READ && d instanceof InputDescriptor) {
              nbytes = BigInt(d.source.available());
            }
          } catch (e) {
            error = errnoOf(e);
          }
          ready.push({ userdata, error, type, nbytes });
        } else {
          throw new WasiError(Errno.INVAL);
        }
      }
      if (ready.length === 0 && clocks.length > 0) {
        // Nothing else can become ready while the guest waits, so sleep until the first clock.
        const first = clocks.reduce((a, b) => (b.deadline < a.deadline ? b : a));
        // Atomics.wait may wake a little early (millisecond rounding): sleep until it is due.
        for (let left = first.deadline - clockNow(first.id); left > 0n;) {
          // At least a microsecond, so that a sub-millisecond remainder still waits.
          host.stop.sleep(Math.max(Number(left) / 1e6, 0.001));
          left = first.deadline - clockNow(first.id);
        }
        for (const clock of clocks) {
          if (clock.deadline <= clockNow(clock.id)) {
            ready.push({ userdata: clock.userdata, error: 0, type: EventType.CLOCK, nbytes: 0n });
          }
        }
      }
      ready.forEach((event, i) => {
        const at = outPtr + i * EVENT_SIZE;
        memory.writable(at, EVENT_SIZE).fill(0);
        memory.setU64(at, event.userdata);
        memory.setU16(at + 8, event.error);
        memory.setU8(at + 10, event.type);
        memory.setU64(at + 16, event.nbytes);
      });
      memory.setU32(resultPtr, ready.length);
    }),
  };
}

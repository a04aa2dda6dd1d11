// The firmware's code with nothing run: device-entry.ts's modules loaded, no agent built. Under xsnap, where
// nothing is preloaded, its live heap is what the code itself holds (bench/heap-code.ts).

import Timer from "timer";
import { createUpdater } from "../src/main";
import { dispatch } from "../host-sim/modules/host";

declare const globalThis: { deviceDeliver?: typeof dispatch; firmware?: typeof createUpdater };

globalThis.deviceDeliver = dispatch;
globalThis.firmware = createUpdater;
// One event, so that the run reads the heap once.
Timer.set(() => {}, 1);

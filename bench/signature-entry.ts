// Bench firmware (runDevice's `entry`): verifies the board's running image against its own Secure Boot v2 block
// the way the agent verifies a download — checkImage with the signed-data digest, then ImageTrust.refuses — and
// logs "checked N" / "trusted N" after each, then "plain N" after the same checkImage without the extra digest, so the host times them (xsnap has no clock of its own to trust).

import { ModdableRunningImage } from "../src/platform/running-image";
import { NativeKeyVerifier } from "../src/platform/signature";
import { Sha256 } from "../src/platform/digest";
import { checkImage, chipIds } from "../src/agent/image";
import { ImageTrust } from "../src/agent/image-trust";
import type { FlashSlot } from "../src/platform/ports";
import { call, dispatch } from "../host-sim/modules/host";

declare const globalThis: { deviceDeliver?: (event: { id: number }, data: ArrayBuffer | undefined) => void };
globalThis.deviceDeliver = dispatch;

const log = (line: string) => call("log", line);
const running = new ModdableRunningImage();
const trust = new ImageTrust({ running, keys: new NativeKeyVerifier(), digest: new Sha256(), log: () => {} }, { requireSignature: true, trustedKeys: [], revokedKeys: [] }, chipIds.esp32);
const digest = new Sha256(), scratch = new Uint8Array(4096);
for (let round = 0; round < 10; round++) {
	log(`begin ${round}`);
	const check = checkImage(running as unknown as FlashSlot, digest, chipIds.esp32, scratch, trust.signedData);
	if (!check.ok) throw new Error(check.reason);
	log(`checked ${round}`);
	const refusal = trust.refuses(running as unknown as FlashSlot, check, running.byteLength, scratch);
	if (refusal) throw new Error(refusal.reason);
	log(`trusted ${round}`);
	if (!checkImage(running as unknown as FlashSlot, digest, chipIds.esp32, scratch).ok) throw new Error("unchecked");
	log(`plain ${round}`);
}

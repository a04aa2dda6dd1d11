// Bench firmware (runDevice's `entry`): one DTLS handshake with the host's DTLS server (config.dtlsPort, the PSK
// provisioned as usual), then the record layer alone — 100 1 KiB application records sealed and opened again —
// logging "baseline", "begin", "connected", "records" and "sealed" so that the host times them and reads the live heap
// after each (xsnap has no clock of its own to trust). The session is kept alive for the heap reading.

import Timer from "timer";
import config from "mc/config";
import { ModdableClock } from "../src/platform/clock";
import { dtlsCrypto } from "../src/platform/dtls-crypto";
import { pskCredentials } from "../src/platform/tls-credentials";
import { udp } from "../src/platform/udp-socket";
import { DtlsSession, defaultDtlsOptions } from "../src/dtls/session";
import { RecordProtection, headerBytes, protectionBytes, readHeader, type RecordHeader } from "../src/dtls/record";
import { call, dispatch } from "../host-sim/modules/host";

declare const globalThis: { deviceDeliver?: typeof dispatch; session?: DtlsSession };
globalThis.deviceDeliver = dispatch;

const log = (line: string) => call("log", line);
const blocks = 100, blockBytes = 1024;

function records(): void {
	log("records");
	const key = new Uint8Array(16).fill(7), iv = new Uint8Array(4).fill(9);
	const writer = new RecordProtection(dtlsCrypto.aes128(key), iv), reader = new RecordProtection(dtlsCrypto.aes128(key), iv);
	const record = new Uint8Array(headerBytes + protectionBytes + blockBytes), header: RecordHeader = { type: 0, epoch: 0, sequence: 0, start: 0, length: 0 };
	for (let i = 0; i < blocks; i++) {
		const length = writer.seal(record, 0, 23, 1, i, blockBytes);
		readHeader(record.subarray(0, length), 0, header);
		if (reader.open(record, header) !== blockBytes) throw new Error("record did not open");
	}
	log(`sealed ${blocks}`);
}

Timer.set(() => log("baseline"), 1);
Timer.set(() => {
	const credentials = pskCredentials();
	if (!credentials) throw new Error("no psk provisioned");
	log("begin");
	const socket = udp.open(0, { received: (packet) => globalThis.session?.receive(new Uint8Array(packet)) });
	globalThis.session = new DtlsSession({
		crypto: dtlsCrypto, clock: new ModdableClock(), log: () => {},
		send: (datagram, length) => socket.send("127.0.0.1", Number(config.dtlsPort), datagram, length),
	}, defaultDtlsOptions, credentials, {
		connected: () => {
			log("connected");
			Timer.set(records, 1);
		},
		data: () => {},
		failed: (reason) => log(`failed ${reason}`),
	});
	globalThis.session.start();
}, 20);

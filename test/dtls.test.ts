// DTLS 1.2 with PSK (src/dtls): the crypto against published vectors, the record layer, replay window and
// handshake on a virtual clock, and interoperation with libcoap's coap-server (OpenSSL) over real UDP.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { createCipheriv, createHmac, randomBytes } from "node:crypto";
import { Ccm8, tagBytes } from "../src/dtls/ccm";
import { HmacSha256 } from "../src/dtls/hmac";
import { prf } from "../src/dtls/prf";
import { aes128, nodeDtlsCrypto } from "../host-sim/board/aes";
import * as dgram from "node:dgram";
import { DtlsSession, defaultDtlsOptions } from "../src/dtls/session";
import { DtlsUdpOpener } from "../src/dtls/socket";
import { ReplayWindow } from "../src/dtls/replay-window";
import { DtlsServer } from "../host-sim/server/dtls-server";
import { libcoapServerBinary, startLibcoapServer, type LibcoapServer } from "../host-sim/server/libcoap";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { logged, tempDir, traced } from "./support/sim";
import type { EngineName } from "../host-sim/device";
import { FakeClock } from "./support/fake-clock";

function hex(text: string): Uint8Array {
	return new Uint8Array(Buffer.from(text.replace(/\s/g, ""), "hex"));
}

function toHex(bytes: Uint8Array): string {
	return Buffer.from(bytes).toString("hex");
}

test("ccm-8: RFC 3610 packet vector #1 (M = 8, L = 2), sealed and opened in place", () => {
	const ccm = new Ccm8(aes128(hex("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf")));
	const nonce = hex("00000003020100a0a1a2a3a4a5"), aad = hex("0001020304050607");
	const buffer = new Uint8Array(4 + 23 + tagBytes);
	buffer.set(hex("08090a0b0c0d0e0f101112131415161718191a1b1c1d1e"), 4);
	ccm.seal(nonce, aad, buffer, 4, 23);
	assert.is(toHex(buffer.subarray(4)), "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0");
	assert.ok(ccm.open(nonce, aad, buffer, 4, 23));
	assert.is(toHex(buffer.subarray(4, 27)), "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e");
});

test("ccm-8: the DTLS shape (12-byte nonce, 13-byte AAD) agrees with OpenSSL for 1 to 100 bytes; any flipped bit fails", () => {
	const key = randomBytes(16), ccm = new Ccm8(aes128(key));
	for (let length = 1; length <= 100; length += length < 20 ? 1 : 17) {
		const nonce = randomBytes(12), aad = randomBytes(13), plain = randomBytes(length);
		const cipher = createCipheriv("aes-128-ccm", key, nonce, { authTagLength: 8 });
		cipher.setAAD(aad, { plaintextLength: length });
		const body = cipher.update(plain);
		const expected = Buffer.concat([body, cipher.final(), cipher.getAuthTag()]);
		const buffer = new Uint8Array(length + tagBytes);
		buffer.set(plain);
		ccm.seal(nonce, aad, buffer, 0, length);
		assert.is(toHex(buffer), expected.toString("hex"), `length ${length}`);
		const flipped = buffer.slice();
		flipped[Math.floor(Math.random() * flipped.length)] ^= 1 << Math.floor(Math.random() * 8);
		assert.not.ok(ccm.open(nonce, aad, flipped, 0, length), `flipped, length ${length}`);
		const otherAad = Uint8Array.from(aad);
		otherAad[12] ^= 1;
		assert.not.ok(ccm.open(nonce, otherAad, buffer.slice(), 0, length));
		assert.ok(ccm.open(nonce, aad, buffer, 0, length));
		assert.is(toHex(buffer.subarray(0, length)), plain.toString("hex"));
	}
});

test("hmac-sha-256: RFC 4231 test cases 1 and 6 (a key longer than a block)", () => {
	const hmac = new HmacSha256(nodeDtlsCrypto.sha256()), mac = new Uint8Array(32);
	hmac.setKey(new Uint8Array(20).fill(0x0b));
	hmac.start();
	hmac.write(new TextEncoder().encode("Hi There"));
	hmac.finish(mac);
	assert.is(toHex(mac), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	hmac.setKey(new Uint8Array(131).fill(0xaa));
	hmac.start();
	hmac.write(new TextEncoder().encode("Test Using Larger Than Block-Size Key - Hash Key First"));
	hmac.finish(mac);
	assert.is(toHex(mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	const key = randomBytes(40), data = randomBytes(300);
	hmac.setKey(key);
	hmac.start();
	hmac.write(data.subarray(0, 100));
	hmac.write(data.subarray(100));
	hmac.finish(mac);
	assert.is(toHex(mac), createHmac("sha256", key).update(data).digest("hex"));
});

test("prf: the TLS 1.2 P_SHA256 known answer (100 bytes, \"test label\")", () => {
	const out = new Uint8Array(100);
	prf(new HmacSha256(nodeDtlsCrypto.sha256()), hex("9bbe436ba940f017b17652849a71db35"), "test label", [hex("a0ba9f936cda3118"), hex("27a6f796ffd5198c")], out);
	assert.is(toHex(out), "e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af"
		+ "0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66");
});

test("replay window: new, duplicate, reordered within 64, too old", () => {
	const window = new ReplayWindow();
	const take = (sequence: number) => {
		if (!window.fresh(sequence)) return false;
		window.mark(sequence);
		return true;
	};
	assert.ok(take(0));
	assert.not.ok(take(0));
	assert.ok(take(5));
	assert.ok(take(3), "reordered, inside the window");
	assert.not.ok(take(3));
	assert.ok(take(100));
	assert.not.ok(take(36), "64 behind the highest: too old");
	assert.ok(take(37));
	assert.ok(take(2 ** 48 - 1), "48-bit sequence numbers");
	assert.not.ok(take(2 ** 48 - 1));
});

const identity = "xs-ota-board", key = new TextEncoder().encode("libcoap-test-psk");
const coapServer = libcoapServerBinary();
if (!coapServer) console.log("dtls.test.ts: coap-server not found (apt-get install libcoap3-bin): libcoap interop tests skipped");

/** A CON GET of "/" over a DtlsSession on a real socket, on the real clock: what libcoap answers, or why not. */
function getRoot(port: number, psk: Uint8Array): Promise<string> {
	return new Promise((done) => {
		const socket = dgram.createSocket("udp4");
		const clock = { ticks: () => Date.now(), now: () => Date.now(), setTimeout: (f: () => void, ms: number) => setTimeout(f, ms), clearTimeout: (h: unknown) => clearTimeout(h as NodeJS.Timeout) };
		const finish = (answer: string) => (socket.close(), done(answer));
		const session: DtlsSession = new DtlsSession({
			crypto: nodeDtlsCrypto, clock, log: () => {}, send: (datagram, length) => socket.send(datagram.subarray(0, length), port, "127.0.0.1"),
		}, defaultDtlsOptions, { identity: new TextEncoder().encode(identity), key: psk }, {
			connected: () => session.send(new Uint8Array([0x40, 0x01, 0x12, 0x34]), 4),
			data: (plaintext) => (session.close(), finish(Buffer.from(plaintext.subarray(4)).toString("latin1"))),
			failed: (reason) => finish(reason),
		});
		socket.on("message", (message) => session.receive(new Uint8Array(message)));
		socket.bind(0, () => session.start());
	});
}

if (coapServer) {
	let server: LibcoapServer;
	const image = makeAppImage({ size: 96 * 1024, version: "2.0.0" });
	test.before(async () => {
		server = await startLibcoapServer({ identity, key });
		server.put("fw.bin", image);
	});
	test.after(async () => server?.close());

	test("libcoap: handshake (cookie, hint, CCM-8) and a GET answered in epoch 1", async () => {
		const answer = await getRoot(server.securePort, key);
		assert.match(answer, "This is a test server made with libcoap");
	});

	test("libcoap: a wrong key ends the handshake with \"dtls: bad psk\"", async () => {
		assert.is(await getRoot(server.securePort, new TextEncoder().encode("not-the-psk")), "dtls: bad psk");
	});

	const psk = { "psk-identity": new TextEncoder().encode(identity), "psk-key": key };
	for (const engine of ["node", "xs"] as EngineName[]) {
		test(`libcoap (${engine}): a coaps:// package pull with two power cuts ends byte-identical`, async () => {
			const dir = tempDir(`dtls-${engine}`);
			const url = server.url("fw.bin");
			const first = await traced({ dir, engine, url, credentials: psk, provisioned: true, cutAfterOps: 40 });
			assert.is(first.end, "power-cut");
			const second = await traced({ dir, engine, cutAfterOps: 30 });
			assert.is(second.end, "power-cut");
			const last = await traced({ dir, engine });
			assert.is(last.result, 1, last.logs.join("\n"));
			assert.is(last.running.sha256, sha256Hex(image));
			assert.is(last.running.slot, 1);
		});

		test(`libcoap (${engine}): a wrong PSK fails the update with 7 and "dtls: bad psk"`, async () => {
			const dir = tempDir(`dtls-wrong-${engine}`);
			const outcome = await traced({ dir, engine, url: server.url("fw.bin"), credentials: { ...psk, "psk-key": new TextEncoder().encode("wrong") }, provisioned: true });
			assert.is(outcome.result, 7, outcome.logs.join("\n"));
			assert.ok(logged(outcome, "dtls: bad psk"), outcome.logs.join("\n"));
			assert.is(outcome.running.slot, 0);
		});
	}
}

test("silent server: ClientHello at 0, 1, 3, 7, 15 s (RFC 6347 timer, virtual clock), then \"dtls: handshake timeout\" at 31 s", () => {
	const clock = new FakeClock(0), sent: number[] = [];
	let reason = "";
	const session = new DtlsSession({ crypto: nodeDtlsCrypto, clock, log: () => {}, send: () => void sent.push(clock.ticks()) }, defaultDtlsOptions,
		{ identity: new TextEncoder().encode(identity), key }, { connected: () => {}, data: () => {}, failed: (why) => void (reason = why) });
	session.start();
	clock.advance(30999);
	assert.equal(sent, [0, 1000, 3000, 7000, 15000]);
	assert.is(reason, "");
	clock.advance(1);
	assert.is(reason, "dtls: handshake timeout");
	clock.advance(600000);
	assert.is(sent.length, 5, "nothing after giving up");
});

test("a server that answers the ClientHello, then discards our Finished without a word (tinydtls's way with a wrong key): \"dtls: bad psk\"", async () => {
	const server = await DtlsServer.start({ key: () => Buffer.from("the-server's-key"), repeatFlights: false });
	const socket = dgram.createSocket("udp4");
	try {
		// The session's timers on a virtual clock, moved only once the server has had our Finished: no retransmission
		// races the real exchange, however slow the host.
		const clock = new FakeClock(0);
		let reason = "";
		const session = new DtlsSession({ crypto: nodeDtlsCrypto, clock, log: () => {}, send: (datagram, length) => socket.send(datagram.subarray(0, length), server.port, "127.0.0.1") },
			defaultDtlsOptions, { identity: new TextEncoder().encode(identity), key }, { connected: () => void (reason = "connected"), data: () => {}, failed: (why) => void (reason = why) });
		socket.on("message", (message) => session.receive(new Uint8Array(message)));
		await new Promise<void>((bound) => socket.bind(0, bound));
		session.start();
		for (let waited = 0; waited < 30_000 && server.stats.badRecords < 1; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
		assert.ok(server.stats.badRecords >= 1, "the server could not read our Finished");
		assert.is(reason, "");
		// RFC 6347's timer runs out with the Finished unanswered.
		clock.advance(60_000);
		assert.is(reason, "dtls: bad psk");
	}
	finally {
		socket.close();
		await server.close();
	}
});

test("a new session after a failed one starts from a socket of its own: the server's half-done handshake on the old port is not in its way", () => {
	const clock = new FakeClock(0), sockets: { localPort: number; sent: number; closed: boolean }[] = [], failures: string[] = [];
	const opener = new DtlsUdpOpener({
		udp: {
			open(localPort) {
				const socket = { localPort, sent: 0, closed: false };
				sockets.push(socket);
				return { send: () => void socket.sent++, close: () => void (socket.closed = true) };
			},
			resolve: (host, answer) => answer(host),
		},
		crypto: nodeDtlsCrypto, clock, log: () => {}, credentials: () => ({ identity: new TextEncoder().encode(identity), key }),
	}, defaultDtlsOptions);
	const secure = opener.open(5684, { received: () => {}, failed: (_address, _port, reason) => void failures.push(reason) });
	secure.send("127.0.0.1", 5684, new Uint8Array(4), 4);
	clock.advance(31000);
	assert.equal(failures, ["dtls: handshake timeout"]);
	assert.equal(sockets.map((socket) => [socket.localPort, socket.sent, socket.closed]), [[5684, 5, true]], "the failed session's socket is closed");
	secure.send("127.0.0.1", 5684, new Uint8Array(4), 4);
	assert.is(sockets.length, 2);
	assert.equal([sockets[1].localPort, sockets[1].sent, sockets[1].closed], [0, 1, false], "a ClientHello from a new port");
	secure.close();
	assert.ok(sockets[1].closed);
});

test.run();

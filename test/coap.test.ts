// CoAP (src/coap): the codec against hostile packets, the endpoint's RFC 7252 timing and deduplication on a
// virtual clock, block-wise helpers, and interoperation with an independent implementation (npm "coap").

import { test } from "uvu";
import * as assert from "uvu/assert";
import {
	Code, Option, Type, blockBytes, bytesString, codeName, firstOption, optionValues, parseBlock, parseMessage,
	serializeMessage, stringBytes, stringOptions, uintBytes, uintOption, type CoapOption, type Message,
} from "../src/coap/message";
import { CoapEndpoint, defaultEndpointOptions, type CoapReply, type CoapRequest, type EndpointOptions } from "../src/coap/endpoint";
import { Block1Assembly, Block1Receiver, block2Reply, defaultSzx } from "../src/coap/block";
import type { UdpHandler, UdpOpener } from "../src/platform/ports";
import { FakeClock } from "./support/fake-clock";
import * as dgram from "node:dgram";
import * as fs from "node:fs";
import { Agent, createServer, request as coapRequest, type IncomingMessage, type OutgoingMessage } from "coap";
import type { Board } from "../host-sim/board/board";
import { UdpNetwork, type UdpFaults } from "../host-sim/board/udp-network";
import { runDevice, type DeviceOutcome, type EngineName } from "../host-sim/device";
import { tempDir } from "./support/sim";

function hex(text: string): Uint8Array {
	return new Uint8Array(Buffer.from(text.replace(/\s/g, ""), "hex"));
}

function serialized(message: Message, size = 2048): Uint8Array {
	const into = new Uint8Array(size);
	return into.slice(0, serializeMessage(message, into));
}

function message(fields: Partial<Message>): Message {
	return { type: Type.con, code: Code.get, messageId: 1, token: new Uint8Array(0), options: [], payload: new Uint8Array(0), ...fields };
}

test("codec: a request in the bytes RFC 7252 prescribes, and back", () => {
	const request = message({ messageId: 0x1234, token: hex("ab"), options: [{ number: Option.uriPath, value: stringBytes("rd") }] });
	assert.equal([...serialized(request)], [...hex("41 01 1234 ab b2 7264")]);
	const parsed = parseMessage(hex("41 01 1234 ab b2 7264")) as Message;
	assert.is(parsed.messageId, 0x1234);
	assert.equal(stringOptions(parsed, Option.uriPath), ["rd"]);
});

test("codec: options sorted on the wire, extended deltas and lengths, payload, helpers", () => {
	const long = new Uint8Array(300).fill(7);
	const original = message({
		type: Type.non, code: Code.content, messageId: 65535, token: hex("0102030405060708"),
		options: [
			{ number: Option.size1, value: uintBytes(5000) },
			{ number: 2000, value: long },
			{ number: Option.uriPath, value: stringBytes("5") },
			{ number: Option.uriPath, value: stringBytes("0") },
			{ number: Option.contentFormat, value: uintBytes(11542) },
			{ number: Option.ifNoneMatch, value: new Uint8Array(0) },
		],
		payload: stringBytes("héllo"),
	});
	const bytes = serialized(original);
	const parsed = parseMessage(bytes) as Message;
	assert.equal(parsed.options.map((option) => option.number), [5, 11, 11, 12, 60, 2000]);
	assert.equal(stringOptions(parsed, Option.uriPath), ["5", "0"]);
	assert.is(uintOption(parsed, Option.contentFormat), 11542);
	assert.is(uintOption(parsed, Option.size1), 5000);
	assert.equal([...optionValues(parsed, 2000)[0]], [...long]);
	assert.is(firstOption(parsed, Option.etag), undefined);
	assert.is(bytesString(parsed.payload), "héllo");
	assert.equal([...serialized(parsed)], [...bytes]);
	assert.equal([...uintBytes(0)], []);
	assert.equal([...uintBytes(0x1000000)], [1, 0, 0, 0]);
	assert.is(codeName(Code.content), "2.05");
	assert.is(codeName(Code.requestEntityIncomplete), "4.08");
	assert.throws(() => serializeMessage(original, new Uint8Array(64)), /message too large/);
	assert.throws(() => serializeMessage(message({ token: new Uint8Array(9) }), new Uint8Array(64)), /bad token length/);
});

test("codec: hostile packets get a short error, never an exception", () => {
	const cases: [string, string][] = [
		["40 01", "truncated header"],
		["80 01 0001", "bad version"],
		["49 01 0001 010203040506070809", "bad token length"],
		["44 01 0001 0102", "truncated token"],
		["40 01 0001 f1 00", "bad option delta"],
		["40 01 0001 1f", "bad option length"],
		["40 01 0001 d1", "truncated option"],
		["40 01 0001 e1 00", "truncated option"],
		["40 01 0001 b5 7264", "truncated option"],
		["40 01 0001 ff", "empty payload"],
		["40 00 0001 ff 01", "bad empty message"],
		["41 00 0001 01", "bad empty message"],
		["40 01 0001 e0 ffff e0 ffff", "bad option number"],
	];
	for (const [packet, error] of cases) assert.is(parseMessage(hex(packet)), error, packet);
	// Random garbage: the parser answers with a message or a string.
	let seed = 7;
	for (let i = 0; i < 2000; i++) {
		const bytes = new Uint8Array(1 + (i % 40));
		for (let j = 0; j < bytes.length; j++) bytes[j] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
		bytes[0] = (bytes[0] & 0x3f) | 0x40;
		const result = parseMessage(bytes);
		assert.ok(typeof result === "string" || typeof result.code === "number");
	}
});

test("codec: block options (RFC 7959 §2.2)", () => {
	assert.equal(parseBlock(new Uint8Array(0)), { num: 0, more: false, szx: 0 });
	assert.equal(parseBlock(blockBytes({ num: 1000, more: true, szx: 6 })), { num: 1000, more: true, szx: 6 });
	assert.equal([...blockBytes({ num: 2, more: true, szx: 2 })], [0x2a]);
	assert.is(parseBlock(hex("0f")), undefined, "szx 7 is reserved");
	assert.is(parseBlock(hex("00000000")), undefined, "longer than 3 bytes");
});

/** An in-memory UDP network: every datagram is recorded with the virtual time it was sent at. */
class Wire implements UdpOpener {
	sent: { at: number; from: number; to: number; bytes: Uint8Array; message: Message }[] = [];
	handlers = new Map<number, UdpHandler>();
	#nextPort = 5000;
	constructor(readonly clock: FakeClock) {}
	open(localPort: number, handler: UdpHandler) {
		const port = localPort || this.#nextPort++;
		this.handlers.set(port, handler);
		return {
			send: (_address: string, to: number, packet: Uint8Array, length: number) => {
				const bytes = packet.slice(0, length);
				this.sent.push({ at: this.clock.ticks(), from: port, to, bytes, message: parseMessage(bytes) as Message });
			},
			close: () => { this.handlers.delete(port); },
		};
	}
	resolve(host: string, answer: (address: string | undefined) => void) {
		answer(host);
	}
	/** Delivers bytes to `to` as if from `from`. */
	deliver(to: number, from: number, bytes: Uint8Array) {
		this.handlers.get(to)?.received(bytes.slice().buffer, "127.0.0.1", from);
	}
	take() {
		const sent = this.sent;
		this.sent = [];
		return sent;
	}
}

function endpoint(wire: Wire, options: Partial<EndpointOptions> = {}, handler?: (request: CoapRequest, reply: (response: CoapReply) => void) => void, logs: string[] = []) {
	const coap = new CoapEndpoint({ udp: wire, clock: wire.clock, log: (line) => logs.push(line) }, { ...defaultEndpointOptions, random: () => 0, ...options },
		{ request: handler ?? ((_request, reply) => reply({ code: Code.notFound })) });
	coap.open(0);
	return coap;
}

const peer = { address: "127.0.0.1", port: 6000 };
const uri = (path: string): CoapOption[] => path.split("/").map((segment) => ({ number: Option.uriPath, value: stringBytes(segment) }));

for (const [random, first] of [[0, 2000], [0.999, 2999]] as const) {
	test(`endpoint: CON retransmitted at ${first} ms, doubling, 4 times, then "timeout" (random ${random})`, () => {
		const clock = new FakeClock(0), wire = new Wire(clock);
		const coap = endpoint(wire, { random: () => random });
		const results: [Message | undefined, string | undefined, number][] = [];
		coap.request(peer, Code.get, uri("3/0/0"), undefined, true, (response, error) => results.push([response, error, clock.ticks()]));
		clock.advance(200000);
		const sent = wire.take();
		const timeout = 2000 * (1 + random * 0.5);
		assert.equal(sent.map((datagram) => datagram.at), [0, 1, 3, 7, 15].map((k) => Math.round(k * timeout * 1000) / 1000));
		assert.ok(sent[1].at >= 2000 && sent[1].at <= 3000);
		assert.ok(sent.every((datagram) => datagram.message.messageId === sent[0].message.messageId), "same message id");
		assert.equal(results, [[undefined, "timeout", 31 * timeout]]);
		assert.ok(31 * timeout <= 93000, "within MAX_TRANSMIT_WAIT");
	});
}

test("endpoint: a piggybacked response ends the exchange; NSTART 1 queues the next request; RST → reset", () => {
	const clock = new FakeClock(0), wire = new Wire(clock);
	const coap = endpoint(wire);
	const results: string[] = [];
	coap.request(peer, Code.get, uri("a"), undefined, true, (response, error) => results.push(error ?? bytesString(response!.payload)));
	coap.request(peer, Code.get, uri("b"), undefined, true, (response, error) => results.push(error ?? bytesString(response!.payload)));
	let [first] = wire.take();
	assert.equal(stringOptions(first.message, Option.uriPath), ["a"]);
	clock.advance(1000);
	// A response with the wrong token is not the answer.
	wire.deliver(first.from, 6000, serialized(message({ type: Type.ack, code: Code.content, messageId: first.message.messageId, token: hex("00"), payload: stringBytes("x") })));
	assert.equal(results, []);
	wire.deliver(first.from, 6000, serialized(message({ type: Type.ack, code: Code.content, messageId: first.message.messageId, token: first.message.token, payload: stringBytes("A") })));
	wire.deliver(first.from, 6000, serialized(message({ type: Type.ack, code: Code.content, messageId: first.message.messageId, token: first.message.token, payload: stringBytes("A") })));
	assert.equal(results, ["A"]);
	[first] = wire.take();
	assert.equal(stringOptions(first.message, Option.uriPath), ["b"]);
	wire.deliver(first.from, 6000, serialized(message({ type: Type.reset, code: Code.empty, messageId: first.message.messageId })));
	assert.equal(results, ["A", "reset"]);
	// Cancelled: no callback, nothing more sent.
	const cancel = coap.request(peer, Code.get, uri("c"), undefined, true, () => results.push("called"));
	cancel();
	wire.take();
	clock.advance(100000);
	assert.equal(wire.take(), []);
	coap.close();
	coap.request(peer, Code.get, uri("d"), undefined, true, (_response, error) => results.push(error!));
	assert.equal(results, ["A", "reset", "closed"]);
});

test("endpoint: a separate response after an empty ACK is ACKed, once even when duplicated", () => {
	const clock = new FakeClock(0), wire = new Wire(clock);
	const coap = endpoint(wire);
	const results: string[] = [];
	coap.request(peer, Code.post, uri("rd"), stringBytes("</1/0>"), true, (response, error) => results.push(error ?? codeName(response!.code)));
	const [request] = wire.take();
	wire.deliver(request.from, 6000, serialized(message({ type: Type.ack, code: Code.empty, messageId: request.message.messageId })));
	clock.advance(60000);
	assert.equal(wire.take(), [], "no retransmission after the empty ACK");
	const separate = serialized(message({ type: Type.con, code: Code.created, messageId: 777, token: request.message.token }));
	wire.deliver(request.from, 6000, separate);
	wire.deliver(request.from, 6000, separate);
	assert.equal(results, ["2.01"]);
	const acks = wire.take();
	assert.is(acks.length, 2);
	for (const ack of acks) assert.equal([ack.message.type, ack.message.code, ack.message.messageId], [Type.ack, Code.empty, 777]);
	// A CON response nobody asked for is rejected.
	wire.deliver(request.from, 6000, serialized(message({ type: Type.con, code: Code.content, messageId: 778, token: hex("99") })));
	assert.equal(wire.take().map((datagram) => [datagram.message.type, datagram.message.messageId]), [[Type.reset, 778]]);
});

test("endpoint: a duplicate CON request gets the same response and the handler runs once; NON duplicates are ignored", () => {
	const clock = new FakeClock(0), wire = new Wire(clock);
	let runs = 0;
	endpoint(wire, {}, (request, reply) => {
		runs++;
		reply({ code: Code.content, payload: stringBytes(`run ${runs} ${stringOptions(request.message, Option.uriPath).join("/")}`) });
	});
	const request = serialized(message({ messageId: 42, token: hex("0102"), options: uri("3/0/1") }));
	wire.deliver(5000, 6000, request);
	clock.advance(100000);
	wire.deliver(5000, 6000, request);
	const [first, second] = wire.take();
	assert.is(runs, 1);
	assert.equal([...second.bytes], [...first.bytes]);
	assert.equal([first.message.type, first.message.messageId, bytesString(first.message.payload)], [Type.ack, 42, "run 1 3/0/1"]);
	// The same message id from another port is another request; after EXCHANGE_LIFETIME it is new again.
	wire.deliver(5000, 6001, request);
	clock.advance(247000);
	wire.deliver(5000, 6000, request);
	assert.is(runs, 3);
	const non = serialized(message({ type: Type.non, messageId: 43, token: hex("03"), options: uri("3/0/2") }));
	wire.deliver(5000, 6000, non);
	wire.deliver(5000, 6000, non);
	assert.is(runs, 4);
	const answers = wire.take();
	assert.equal(answers.at(-1)!.message.type, Type.non);
	assert.equal([...answers.at(-1)!.message.token], [3]);
});

test("endpoint: ping → RST, unknown critical option → 4.02, unparseable CON → RST", () => {
	const clock = new FakeClock(0), wire = new Wire(clock);
	let runs = 0;
	const logs: string[] = [];
	endpoint(wire, {}, (_request, reply) => { runs++; reply({ code: Code.content }); }, logs);
	wire.deliver(5000, 6000, hex("40 00 0101"));
	wire.deliver(5000, 6000, serialized(message({ messageId: 0x0102, token: hex("aa"), options: [{ number: 2049, value: new Uint8Array(1) }] })));
	wire.deliver(5000, 6000, serialized(message({ messageId: 0x0103, token: hex("ab"), options: [{ number: 2048, value: new Uint8Array(1) }] })));
	wire.deliver(5000, 6000, hex("40 01 0104 ff"));
	wire.deliver(5000, 6000, hex("50 00 0105"));
	const answers = wire.take().map(({ message }) => [message.type, codeName(message.code), message.messageId]);
	assert.equal(answers, [[Type.reset, "0.00", 0x101], [Type.ack, "4.02", 0x102], [Type.ack, "2.05", 0x103], [Type.reset, "0.00", 0x104]]);
	assert.is(runs, 1, "an unknown elective option is ignored");
	assert.ok(logs.some((line) => line.includes("empty payload")), logs.join("\n"));
});

test("endpoint: a slow reply becomes a separate CON response, retransmitted until ACKed; duplicates get the empty ACK", () => {
	const clock = new FakeClock(0), wire = new Wire(clock);
	let later: ((response: CoapReply) => void) | undefined;
	endpoint(wire, { separateAfterMs: 500 }, (_request, reply) => { later = reply; });
	const request = serialized(message({ messageId: 9, token: hex("cafe"), options: uri("5/0/3") }));
	wire.deliver(5000, 6000, request);
	assert.equal(wire.take(), []);
	clock.advance(500);
	wire.deliver(5000, 6000, request);
	const empties = wire.take();
	assert.equal(empties.map(({ at, message }) => [at, message.type, message.code, message.messageId]), [[500, Type.ack, 0, 9], [500, Type.ack, 0, 9]]);
	clock.advance(1000);
	later!({ code: Code.content, payload: stringBytes("2") });
	later!({ code: Code.content, payload: stringBytes("twice") });
	clock.advance(2000);
	const responses = wire.take();
	assert.is(responses.length, 2, "sent and retransmitted once");
	for (const { message } of responses) assert.equal([message.type, bytesString(message.payload), [...message.token]], [Type.con, "2", [0xca, 0xfe]]);
	wire.deliver(5000, 6000, serialized(message({ type: Type.ack, code: Code.empty, messageId: responses[0].message.messageId })));
	clock.advance(100000);
	assert.equal(wire.take(), []);
});

test("endpoint: notifications carry Observe; CON ACKed → delivered, RST → dropped; a RST to a NON one reaches onReset", () => {
	const clock = new FakeClock(0), wire = new Wire(clock);
	const coap = endpoint(wire);
	const token = hex("0badcafe");
	const delivered: boolean[] = [];
	const resets: string[] = [];
	coap.onReset = (from, resetToken) => resets.push(`${from.port} ${Buffer.from(resetToken).toString("hex")}`);
	coap.notify(peer, token, 0x1000002, { code: Code.content, payload: stringBytes("1") }, true, (ok) => delivered.push(ok));
	let [sent] = wire.take();
	assert.equal([sent.message.type, uintOption(sent.message, Option.observe), [...sent.message.token]], [Type.con, 2, [...token]]);
	wire.deliver(sent.from, 6000, serialized(message({ type: Type.ack, code: Code.empty, messageId: sent.message.messageId })));
	coap.notify(peer, token, 3, { code: Code.content, payload: stringBytes("2") }, true, (ok) => delivered.push(ok));
	[sent] = wire.take();
	wire.deliver(sent.from, 6000, serialized(message({ type: Type.reset, code: Code.empty, messageId: sent.message.messageId })));
	coap.notify(peer, token, 4, { code: Code.content }, true, (ok) => delivered.push(ok));
	clock.advance(100000);
	assert.is(wire.take().length, 5);
	coap.notify(peer, token, 5, { code: Code.content }, false, (ok) => delivered.push(ok));
	[sent] = wire.take();
	assert.is(sent.message.type, Type.non);
	wire.deliver(sent.from, 6000, serialized(message({ type: Type.reset, code: Code.empty, messageId: sent.message.messageId })));
	assert.equal(delivered, [true, false, false, true]);
	assert.equal(resets, ["6000 0badcafe"]);
});

test("block: Block2 slices honour the requested size, Size2 tells the total, past the end is refused", () => {
	const representation = new Uint8Array(3000).map((_, i) => i & 0xff);
	const szx = defaultSzx(defaultEndpointOptions.maxMessageBytes);
	assert.is(szx, 6);
	assert.is(defaultSzx(600), 4);
	const first = block2Reply(representation, undefined, szx)!;
	assert.is(first.payload.length, 1024);
	assert.equal(parseBlock(first.options[0].value), { num: 0, more: true, szx: 6 });
	assert.equal([first.options[1].number, first.options[1].value.length], [Option.size2, 2]);
	const last = block2Reply(representation, { num: 2, more: false, szx: 6 }, szx)!;
	assert.equal([last.payload.length, last.payload[0]], [952, 2048 & 0xff]);
	assert.equal(parseBlock(last.options[0].value), { num: 2, more: false, szx: 6 });
	const small = block2Reply(representation, { num: 5, more: false, szx: 2 }, szx)!;
	assert.equal([small.payload.length, small.payload[0]], [64, 320 & 0xff]);
	// Asked for 1024-byte blocks from a server limited to 256: block 1 of 1024 is block 4 of 256.
	const lowered = block2Reply(representation, { num: 1, more: false, szx: 6 }, 4)!;
	assert.equal(parseBlock(lowered.options[0].value), { num: 4, more: true, szx: 4 });
	assert.is(lowered.payload[0], 1024 & 0xff);
	assert.is(block2Reply(representation, { num: 3, more: false, szx: 6 }, szx), undefined);
	assert.equal(block2Reply(representation.subarray(0, 10), undefined, szx)!.options, []);
});

test("block: Block1Receiver tells in-order, duplicate and out-of-order parts", () => {
	const receiver = new Block1Receiver();
	assert.is(receiver.part({ num: 0, more: true, szx: 2 }, 64), "in-order");
	assert.is(receiver.offset, 0);
	assert.is(receiver.part({ num: 0, more: true, szx: 2 }, 64), "duplicate");
	assert.is(receiver.part({ num: 2, more: true, szx: 2 }, 64), "out-of-order");
	assert.is(receiver.part({ num: 1, more: true, szx: 2 }, 64), "in-order");
	assert.is(receiver.offset, 64);
	assert.is(receiver.part({ num: 1, more: true, szx: 2 }, 64), "duplicate");
	// The client lowers the size: block 4 of 32 bytes starts at 128.
	assert.is(receiver.part({ num: 4, more: true, szx: 1 }, 32), "in-order");
	assert.is(receiver.part({ num: 5, more: true, szx: 1 }, 20), "out-of-order", "short part before the last");
	assert.is(receiver.part({ num: 5, more: false, szx: 1 }, 20), "in-order");
	assert.is(receiver.received, 180);
	assert.is(receiver.part({ num: 0, more: true, szx: 2 }, 64), "in-order", "block 0 restarts");
	assert.is(receiver.received, 64);
});

test("block: Block1Assembly hands on a body only whole, of one upload, within its limit", () => {
	const assembly = new Block1Assembly(100);
	const bytes = (length: number, fill: number) => new Uint8Array(length).fill(fill);
	const single = bytes(10, 1);
	assert.is(assembly.part("a", { num: 0, more: false, szx: 2 }, single, undefined), single, "one part: the payload itself");
	assert.is(assembly.part("a", { num: 0, more: true, szx: 2 }, bytes(64, 1), undefined), Code.continue);
	assert.is(assembly.part("a", { num: 0, more: true, szx: 2 }, bytes(64, 1), undefined), Code.continue, "block 0 again starts over");
	assert.is(assembly.part("b", { num: 1, more: false, szx: 2 }, bytes(20, 2), undefined), Code.requestEntityIncomplete, "another upload's part");
	assert.is(assembly.part("a", { num: 2, more: false, szx: 2 }, bytes(20, 2), undefined), Code.requestEntityIncomplete, "out of sequence");
	const body = assembly.part("a", { num: 1, more: false, szx: 2 }, bytes(20, 2), undefined) as Uint8Array;
	assert.equal([...body], [...bytes(64, 1), ...bytes(20, 2)]);
	assert.is(assembly.part("a", { num: 1, more: false, szx: 2 }, bytes(20, 2), undefined), Code.requestEntityIncomplete, "done: nothing under way");
	assert.is(assembly.part("a", { num: 0, more: true, szx: 2 }, bytes(64, 1), 101), Code.requestEntityTooLarge, "Size1 past the limit");
	assert.is(assembly.part("a", { num: 0, more: true, szx: 2 }, bytes(64, 1), undefined), Code.continue);
	assert.is(assembly.part("a", { num: 1, more: true, szx: 2 }, bytes(64, 1), undefined), Code.requestEntityTooLarge, "128 bytes pass 100");
	assert.is(assembly.part("a", { num: 2, more: false, szx: 2 }, bytes(1, 1), undefined), Code.requestEntityIncomplete, "the upload ended");
});

// The board's UDP sockets: faults repeat with their seed, and an idle socket does not hold the run loop.

function plainSocket(): Promise<{ socket: dgram.Socket; port: number; received: string[] }> {
	const socket = dgram.createSocket("udp4"), received: string[] = [];
	socket.on("message", (message) => received.push(message.toString()));
	return new Promise((resolve) => socket.bind(0, "127.0.0.1", () => resolve({ socket, port: socket.address().port, received })));
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function faultyRun(faults: UdpFaults) {
	const network = new UdpNetwork(undefined, faults), peer = await plainSocket();
	network.open(1, 0);
	for (let i = 0; i < 200; i++) network.send(1, "127.0.0.1", peer.port, stringBytes(String(i)));
	await pause(200);
	network.closeAll();
	peer.socket.close();
	return { counts: [network.datagramsSent, network.lost, network.duplicated, network.reordered], received: peer.received };
}

test("host-sim UDP: seeded loss, duplication and reordering, the same for the same seed", async () => {
	const faults = { loss: 0.2, duplicate: 0.2, reorder: 0.2, seed: 11 };
	const first = await faultyRun(faults), again = await faultyRun(faults), other = await faultyRun({ ...faults, seed: 12 });
	const [sent, lost, duplicated, reordered] = first.counts;
	assert.is(sent, 200);
	assert.ok(lost > 20 && lost < 60 && duplicated > 15 && reordered > 20, String(first.counts));
	assert.is(first.received.length, sent - lost + duplicated);
	assert.ok(first.received.some((value, i) => i > 0 && Number(value) < Number(first.received[i - 1])), "some overtaken");
	assert.equal(again.counts, first.counts);
	assert.equal([...again.received].sort(), [...first.received].sort());
	assert.not.equal(other.counts, first.counts);
	const clean = await faultyRun({});
	assert.equal(clean.counts, [200, 0, 0, 0]);
});

test("host-sim UDP: counters, and the run loop waits for an open socket only while a timer is armed", async () => {
	const network = new UdpNetwork(), peer = await plainSocket();
	network.quietMs = 100;
	assert.is(network.waitFor(undefined), undefined, "no socket");
	network.open(1, 0);
	await pause(20);
	const port = network.localPort(1)!;
	assert.equal(network.localPorts, [port]);
	assert.is(network.waitFor(5000), 5000);
	assert.is(network.waitFor(undefined), undefined, "idle: nothing could ever arrive that the device waits for");
	network.send(1, "127.0.0.1", peer.port, stringBytes("ping"));
	assert.ok(network.waitFor(undefined)! > 0 && network.waitFor(undefined)! <= 100, "an answer on its way may still come");
	peer.socket.send("pong", port, "127.0.0.1");
	await pause(50);
	assert.is(network.waitFor(undefined), 0);
	const { event, data } = network.take()!;
	assert.equal([event.id, event.address, event.port, Buffer.from(data!).toString()], [1, "127.0.0.1", peer.port, "pong"]);
	assert.equal([network.datagramsSent, network.bytesSent, network.datagramsReceived, network.bytesReceived], [1, 4, 1, 4]);
	network.resolve(7, "localhost");
	assert.equal(network.take()!.event, { id: 7, address: "127.0.0.1" });
	network.closeAll();
	assert.is(network.waitFor(1000), undefined);
	assert.throws(() => network.send(1, "127.0.0.1", peer.port, stringBytes("x")), /socket closed/);
	peer.socket.close();
});

// Interoperation: src/coap inside the simulated board (test/support/coap-device.ts) on both engines, against
// the npm "coap" library as server and as client.

interface Device {
	outcome: Promise<DeviceOutcome>;
	logs: string[];
	board: () => Board;
	port: () => Promise<number>;
	dir: string;
}

function startDevice(engine: EngineName, config: Record<string, unknown>, udpFaults?: UdpFaults): Device {
	const dir = tempDir("coap"), logs: string[] = [];
	let board: Board | undefined;
	const outcome = runDevice({
		dir, engine, entry: "test/support/coap-device.ts", config, udpFaults,
		onBoard: (powered) => { board = powered; },
		onEvent: (event) => { if (event.event === "log") logs.push(String(event.message)); },
	});
	const port = async () => {
		for (;;) {
			const bound = board?.udp.localPorts[0];
			if (bound) return bound;
			await pause(10);
		}
	};
	return { outcome, logs, board: () => board!, port, dir };
}

function listening(server: ReturnType<typeof createServer>): Promise<number> {
	return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server as any)._sock.address().port)));
}

const faults = { loss: 0.2, duplicate: 0.2, reorder: 0.3, seed: 5 };

test("board: a device with an open UDP socket and no timer is idle: the run ends", async () => {
	const device = startDevice("node", { coapIdle: true });
	const started = Date.now();
	const outcome = await device.outcome;
	assert.is(outcome.end, "idle");
	assert.ok(Date.now() - started < 5000, `${Date.now() - started} ms`);
	assert.is(device.board().udp.localPorts.length, 0, "closed at the end of the run");
	fs.rmSync(device.dir, { recursive: true, force: true });
});

for (const engine of ["node", "xs"] as const) {
	for (const faulty of [false, true]) {
		test(`interop (${engine}${faulty ? ", loss 0.2, duplication 0.2, reordering" : ""}): our client gets piggybacked and separate responses from npm coap's server`, async () => {
			const handled: string[] = [];
			const server = createServer((request: IncomingMessage, response: OutgoingMessage) => {
				handled.push(request.url);
				if (request.url === "/slow") setTimeout(() => response.end("slow answer"), 150);
				else response.end(`answer to ${request.url}`);
			});
			const serverPort = await listening(server);
			const paths = faulty ? ["hello", "slow", "a", "slow", "b", "c", "slow", "d"] : ["hello", "slow"];
			const device = startDevice(engine, { coapPeer: `localhost:${serverPort}`, coapRequests: paths, coapAckTimeoutMs: 300 }, faulty ? faults : undefined);
			const outcome = await device.outcome;
			server.close();
			const answers = device.logs.filter((line) => line.startsWith("GET "));
			assert.equal(answers.sort(), paths.map((path) => `GET ${path} → 2.05 ${path === "slow" ? "slow answer" : `answer to /${path}`}`).sort(), device.logs.join("\n"));
			assert.is(outcome.end, "idle");
			const udp = device.board().udp;
			if (faulty) {
				assert.ok(udp.lost > 0 && udp.duplicated > 0 && udp.reordered > 0, `${udp.lost} ${udp.duplicated} ${udp.reordered}`);
				assert.ok(udp.datagramsSent > paths.length, "retransmissions");
			}
			else {
				// One request each, one ACK for the separate response; the library saw each request once.
				assert.is(udp.datagramsSent, 3);
				assert.equal(handled, ["/hello", "/slow"]);
			}
			fs.rmSync(device.dir, { recursive: true, force: true });
		});
	}

	test(`interop (${engine}): npm coap's client reads 3 KB by Block2, writes 5 KB by Block1, observes 3 notifications`, async () => {
		const device = startDevice(engine, {});
		const port = await device.port();
		const agent = new Agent({ type: "udp4" });
		const send = (options: Record<string, unknown>, payload?: Uint8Array, block1?: number): Promise<IncomingMessage> => new Promise((resolve, reject) => {
			const request = coapRequest({ hostname: "127.0.0.1", port, agent, ...options });
			if (block1 !== undefined) request.setOption("Block1", Buffer.of(block1));
			request.on("response", resolve);
			request.on("error", reject);
			request.end(payload ? Buffer.from(payload) : undefined);
		});
		const big = await send({ pathname: "/big" });
		assert.is(big.code, "2.05");
		assert.equal([...big.payload], [...new Uint8Array(3000).map((_, i) => (i * 7) & 0xff)]);

		const upload = new Uint8Array(5 * 1024).map((_, i) => (i * 13 + 5) & 0xff);
		const put = await send({ pathname: "/upload", method: "PUT" }, upload, 4);
		assert.is(put.code, "2.04");
		assert.ok(device.logs.includes("upload 5120 bytes"), device.logs.join("\n"));
		const back = await send({ pathname: "/upload" });
		assert.equal([...back.payload], [...upload]);

		const values: string[] = [];
		const observed = await send({ pathname: "/counter", observe: true });
		await new Promise<void>((resolve) => {
			// The stream gives the registration's response first, then each notification.
			observed.on("data", (value: Buffer) => { values.push(value.toString()); if (values.length === 4) resolve(); });
		});
		assert.equal(values, ["0", "1", "2", "3"]);
		(observed as unknown as { close(): void }).close();
		await pause(100);
		assert.equal(device.logs.filter((line) => line.startsWith("notification")), ["notification 1 delivered", "notification 2 delivered", "notification 3 delivered"]);

		const stop = await send({ pathname: "/stop", method: "POST" });
		assert.is(stop.code, "2.04");
		const outcome = await device.outcome;
		assert.is(outcome.end, "idle", "the run ends once the device closes its socket");
		agent.close();
		fs.rmSync(device.dir, { recursive: true, force: true });
	});
}

test.run();

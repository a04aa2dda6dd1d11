// A test firmware for the simulated board (runDevice's `entry`): the CoAP endpoint of src/coap on the
// board's UDP socket, as the LwM2M client will use it, with no agent. config:
//   coapPeer "host:port", coapRequests [path…]: GET each (CON, in one go: NSTART queues them), log each
//     answer as "GET path → code payload", then close. Without coapPeer it serves until POST /stop:
//   GET /big (3000 bytes, Block2), PUT /upload (Block1, kept in RAM) and GET /upload (Block2),
//   GET /counter with Observe 0: three CON notifications 100 ms apart.
//   coapAckTimeoutMs: ACK_TIMEOUT (RFC default otherwise). coapIdle: no timer, just the open socket.

import config from "mc/config";
import Timer from "timer";
import { ModdableClock } from "../../src/platform/clock";
import { udp } from "../../src/platform/udp-socket";
import { CoapEndpoint, defaultEndpointOptions, type CoapReply, type CoapRequest } from "../../src/coap/endpoint";
import { Block1Receiver, block2Reply, defaultSzx } from "../../src/coap/block";
import { Code, Option, bytesString, codeName, firstOption, parseBlock, stringBytes, stringOptions, uintBytes, uintOption } from "../../src/coap/message";
import { call, dispatch } from "../../host-sim/modules/host";

declare const globalThis: { deviceDeliver?: (event: { id: number }, data: ArrayBuffer | undefined) => void };
globalThis.deviceDeliver = dispatch;

const log = (line: string) => call("log", line);
const options = { ...defaultEndpointOptions, ackTimeoutMs: Number(config.coapAckTimeoutMs ?? defaultEndpointOptions.ackTimeoutMs) };
const maxSzx = defaultSzx(options.maxMessageBytes);
const big = new Uint8Array(3000).map((_, i) => (i * 7) & 0xff);
const upload = new Uint8Array(8192);
const receiver = new Block1Receiver();
let uploaded = 0;
// Keeps the board's run loop waiting for datagrams (it waits only while a timer is armed).
let keepAlive: Timer | undefined = config.coapIdle ? undefined : Timer.repeat(() => {}, 60000);

function blocks(representation: Uint8Array, request: CoapRequest, reply: (response: CoapReply) => void): void {
	const asked = firstOption(request.message, Option.block2);
	const block = asked ? parseBlock(asked) : undefined;
	if (asked && !block) return reply({ code: Code.badOption });
	const slice = block2Reply(representation, block, maxSzx);
	if (!slice) return reply({ code: Code.badOption });
	reply({ code: Code.content, options: [{ number: Option.contentFormat, value: uintBytes(42) }, ...slice.options], payload: slice.payload });
}

function put(request: CoapRequest, reply: (response: CoapReply) => void): void {
	const value = firstOption(request.message, Option.block1);
	const block = value ? parseBlock(value) : { num: 0, more: false, szx: 6 };
	if (!block) return reply({ code: Code.badOption });
	const payload = request.message.payload;
	const part = receiver.part(block, payload.length);
	if (part === "out-of-order") return reply({ code: Code.requestEntityIncomplete });
	if (part === "in-order") {
		if (receiver.received > upload.length) return reply({ code: Code.requestEntityTooLarge });
		upload.set(payload, receiver.offset);
	}
	const echo = value ? [{ number: Option.block1, value }] : [];
	if (block.more) return reply({ code: Code.continue, options: echo });
	uploaded = receiver.received;
	log(`upload ${uploaded} bytes`);
	reply({ code: Code.changed, options: echo });
}

function observe(request: CoapRequest, reply: (response: CoapReply) => void): void {
	reply({ code: Code.content, options: [{ number: Option.observe, value: uintBytes(0) }], payload: stringBytes("0") });
	let sequence = 0;
	const timer = Timer.repeat(() => {
		sequence++;
		if (sequence === 3) Timer.clear(timer);
		endpoint.notify(request.peer, request.message.token.slice(), sequence, { code: Code.content, payload: stringBytes(String(sequence)) }, true,
			(delivered) => log(`notification ${sequence} ${delivered ? "delivered" : "dropped"}`));
	}, 100);
}

const endpoint = new CoapEndpoint({ udp, clock: new ModdableClock(), log }, options, {
	request(request, reply) {
		const path = stringOptions(request.message, Option.uriPath).join("/");
		if (path === "big" && request.method === Code.get) return blocks(big, request, reply);
		if (path === "upload" && request.method === Code.put) return put(request, reply);
		if (path === "upload" && request.method === Code.get) return blocks(upload.subarray(0, uploaded), request, reply);
		if (path === "counter" && uintOption(request.message, Option.observe) === 0) return observe(request, reply);
		if (path === "stop" && request.method === Code.post) {
			reply({ code: Code.changed });
			return stop();
		}
		reply({ code: Code.notFound });
	},
});

function stop(): void {
	endpoint.close();
	Timer.clear(keepAlive);
	keepAlive = undefined;
	log("stopped");
}

endpoint.open(0);

if (typeof config.coapPeer === "string") {
	const [host, port] = config.coapPeer.split(":");
	udp.resolve(host, (address) => {
		if (!address) return log(`cannot resolve ${host}`);
		const paths = config.coapRequests as string[];
		let left = paths.length;
		for (const path of paths) {
			const uri = path.split("/").map((segment) => ({ number: Option.uriPath, value: stringBytes(segment) }));
			endpoint.request({ address, port: Number(port) }, Code.get, uri, undefined, true, (response, error) => {
				log(`GET ${path} → ${response ? `${codeName(response.code)} ${bytesString(response.payload)}` : error}`);
				if (--left === 0) stop();
			});
		}
	});
}

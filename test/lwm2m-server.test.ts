// The local LwM2M server and the CoAP package server, driven by a scripted LwM2M client made of the npm
// `coap` library (a Server and an Agent on one socket, as a device has): registration, update and
// de-registration, reads decoded from byte vectors of the OMA examples, writes encoded as a device expects,
// observe, a Block1 push, and Block2 pulls that resume mid-file and see a replaced file's ETag change.

import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import * as dgram from "node:dgram";
import { Agent, createServer, type IncomingMessage, type OutgoingMessage, type Server } from "coap";
import { generate, parse, type ParsedPacket } from "coap-packet";
import { Lwm2mServer, type Registration } from "../host-sim/server/lwm2m-server";
import { decode, encode } from "../host-sim/server/lwm2m-formats";
import { CoapFileServer } from "../host-sim/server/coap-file-server";
import { uintOption } from "../host-sim/server/coap-option";

function hex(text: string): Buffer {
	return Buffer.from(text.replace(/\s/g, ""), "hex");
}

// Deterministic bytes with no short period, so an offset error shows.
function firmwareBytes(size: number, seed: string): Buffer {
	const blocks: Buffer[] = [];
	for (let i = 0; blocks.length * 32 < size; i++) blocks.push(createHash("sha256").update(`${seed}:${i}`).digest());
	return Buffer.concat(blocks).subarray(0, size);
}

// OMA-TS-LightweightM2M_Core §7.4.3 example: Read /3/0 of the example client's Device object, as TLV.
const deviceTlv = hex(`
	C8 00 14 4F 70 65 6E 20 4D 6F 62 69 6C 65 20 41 6C 6C 69 61 6E 63 65
	C8 01 16 4C 69 67 68 74 77 65 69 67 68 74 20 4D 32 4D 20 43 6C 69 65 6E 74
	C8 02 09 33 34 35 30 30 30 31 32 33
	C3 03 31 2E 30
	86 06 41 00 01 41 01 05
	88 07 08 42 00 0E D8 42 01 13 88
	87 08 41 00 7D 42 01 03 84
	C1 09 64
	C1 0A 0F
	83 0B 41 00 00
	C4 0D 51 82 42 8F
	C6 0E 2B 30 32 3A 30 30
	C1 0F 55`);
const deviceValue = {
	0: "Open Mobile Alliance", 1: "Lightweight M2M Client", 2: "345000123", 3: "1.0", 6: { 0: 1, 1: 5 }, 7: { 0: 3800, 1: 5000 },
	8: { 0: 125, 1: 900 }, 9: 100, 10: 15, 11: { 0: 0 }, 13: 1367491215, 14: "+02:00", 15: "U",
};
// The same instance in SenML JSON, as LwM2M 1.1 names it (base name "/3/0/", multi-instance "6/0").
const deviceSenml = `[{"bn":"/3/0/","n":"0","vs":"Open Mobile Alliance"},{"n":"1","vs":"Lightweight M2M Client"},{"n":"2","vs":"345000123"},
	{"n":"3","vs":"1.0"},{"n":"6/0","v":1},{"n":"6/1","v":5},{"n":"7/0","v":3800},{"n":"7/1","v":5000},{"n":"8/0","v":125},{"n":"8/1","v":900},
	{"n":"9","v":100},{"n":"10","v":15},{"n":"11/0","v":0},{"n":"13","v":1367491215},{"n":"14","vs":"+02:00"},{"n":"15","vs":"U"}]`;
// /5/0 in SenML CBOR, encoded by hand: [{-2:"/5/0/", 0:"3", 2:1}, {0:"5", 2:0}, {0:"1", 3:"coap://x"}, {0:"14", 4:true}, {0:"0", 8:h'0102'}]
const firmwareCbor = hex(`85
	a3 21 65 2f352f302f 00 61 33 02 01
	a2 00 61 35 02 00
	a2 00 61 31 03 68 636f61703a2f2f78
	a2 00 62 3134 04 f5
	a2 00 61 30 08 42 0102`);

async function rejects(promise: Promise<unknown>, message: RegExp): Promise<void> {
	const error = await promise.then(() => undefined, (reason: Error) => reason);
	assert.ok(error, `resolved where ${message} was expected`);
	assert.match(error!.message, message);
}

type Handler = (request: IncomingMessage, response: OutgoingMessage) => void;
type Seen = { method: string; path: string; query: string[]; options: ParsedPacket["options"]; payload: Buffer; port: number };

/** A scripted LwM2M client: answers the server with `handler`, and records every datagram it receives. */
class ScriptedClient {
	handler: Handler = (_request, response) => {
		response.code = "4.04";
		response.end();
	};
	readonly received: ParsedPacket[] = [];
	readonly requests: Seen[] = [];
	readonly #socket: dgram.Socket;
	readonly #server: Server;
	readonly #agent: Agent;

	private constructor(socket: dgram.Socket) {
		this.#socket = socket;
		socket.on("message", (message) => this.received.push(parse(message)));
		this.#server = createServer((request, response) => {
			const options = request._packet.options as ParsedPacket["options"];
			const strings = (name: string) => options.filter((option) => option.name === name).map((option) => String(option.value));
			this.requests.push({ method: request.method, path: "/" + strings("Uri-Path").join("/"), query: strings("Uri-Query"), options, payload: request.payload, port: request.rsinfo.port });
			this.handler(request, response);
		});
		this.#server.listen(socket);
		this.#agent = new Agent({ socket });
	}

	static start(): Promise<ScriptedClient> {
		return new Promise((resolve) => {
			const socket = dgram.createSocket("udp4");
			socket.bind(0, "127.0.0.1", () => resolve(new ScriptedClient(socket)));
		});
	}

	get port(): number {
		return this.#socket.address().port;
	}

	send(server: Lwm2mServer, method: "POST" | "DELETE", pathname: string, query?: string, payload?: string): Promise<{ code: string; location: string }> {
		return new Promise((resolve, reject) => {
			const request = this.#agent.request({ hostname: "127.0.0.1", port: server.port, method, pathname, query, options: payload ? { "Content-Format": Buffer.of(40) } : {} });
			request.on("response", (response: IncomingMessage) => {
				const location = (response._packet.options ?? []).filter((option) => option.name === "Location-Path").map((option) => String(option.value));
				resolve({ code: response.code, location: location.length ? "/" + location.join("/") : "" });
			});
			request.on("error", reject);
			request.end(payload);
		});
	}

	register(server: Lwm2mServer, endpoint: string, lifetime = 300): Promise<{ code: string; location: string }> {
		return this.send(server, "POST", "/rd", `ep=${endpoint}&lt=${lifetime}&lwm2m=1.1&b=U`, `</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</5/0>`);
	}

	close(): Promise<void> {
		this.#agent.close();
		this.#server.close();
		return new Promise((resolve) => this.#socket.close(() => resolve()));
	}
}

/** Answers one content read: the given Content-Format and payload. */
function content(format: number, payload: Buffer | string): Handler {
	return (_request, response) => {
		response.setOption("Content-Format", uintOption(format));
		response.end(payload);
	};
}

function accepted(seen: Seen): number | undefined {
	const accept = seen.options.find((option) => option.name === "Accept")?.value as unknown;
	if (accept === undefined) return undefined;
	if (typeof accept === "number") return accept;
	return typeof accept === "string" ? { "application/vnd.oma.lwm2m+tlv": 11542, "application/senml+json": 110, "application/senml+cbor": 112, "application/octet-stream": 42, "text/plain": 0, "application/link-format": 40 }[accept] : undefined;
}

type Context = { server: Lwm2mServer; client: ScriptedClient; endpoint: string };
const lwm2m = suite<Context>("lwm2m server", { server: undefined as unknown as Lwm2mServer, client: undefined as unknown as ScriptedClient, endpoint: "" });
let endpoints = 0;

lwm2m.before.each(async (context) => {
	context.server = await Lwm2mServer.start();
	context.client = await ScriptedClient.start();
	context.endpoint = `board-${++endpoints}`;
});

lwm2m.after.each(async (context) => {
	await context.client.close();
	await context.server.close();
});

async function registered(context: Context): Promise<Registration> {
	const reply = await context.client.register(context.server, context.endpoint);
	assert.is(reply.code, "2.01");
	return context.server.registration(context.endpoint)!;
}

lwm2m("register answers 2.01 with rd/<id>, and the registration holds what the client said", async (context) => {
	const events: Registration[] = [];
	context.server.on("register", (registration: Registration) => events.push(registration));
	const reply = await context.client.register(context.server, context.endpoint, 120);
	assert.is(reply.code, "2.01");
	assert.match(reply.location, /^\/rd\/[0-9a-f]+$/);
	const registration = context.server.registration(context.endpoint)!;
	assert.equal({ ...registration, registeredAt: 0, updatedAt: 0 }, {
		endpoint: context.endpoint, location: reply.location, lifetime: 120, binding: "U", lwm2mVersion: "1.1",
		objectLinks: `</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</5/0>`, address: "127.0.0.1", port: context.client.port,
		registeredAt: 0, updatedAt: 0, updates: 0, queueMode: false, awake: true,
	});
	assert.is(events.length, 1);
	assert.is(context.server.url, `coap://127.0.0.1:${context.server.port}`);
});

lwm2m("update refreshes the registration, an unknown id gets 4.04, delete ends it", async (context) => {
	const { location } = await registered(context);
	const before = Date.now() - 1;
	const waiting = context.server.waitForRegistration(context.endpoint, 5000, before);
	assert.is((await context.client.send(context.server, "POST", location, "lt=60", "</1/0>,</3/0>,</5/0>,</5/1>")).code, "2.04");
	const updated = await waiting;
	assert.is(updated.updates, 1);
	assert.is(updated.lifetime, 60);
	assert.is(updated.objectLinks, "</1/0>,</3/0>,</5/0>,</5/1>");
	assert.is((await context.client.send(context.server, "POST", "/rd/00000000")).code, "4.04");
	const gone: Registration[] = [];
	context.server.on("deregister", (registration: Registration) => gone.push(registration));
	assert.is((await context.client.send(context.server, "DELETE", location)).code, "2.02");
	assert.is(context.server.registration(context.endpoint), undefined);
	assert.is(gone[0].location, location);
	assert.is((await context.client.send(context.server, "POST", location)).code, "4.04", "an update after de-registration");
	await rejects(context.server.read(context.endpoint, "/3/0"), /not registered/);
});

lwm2m("Queue Mode: requests for a sleeping client wait, and go out in order once it sends a Registration Update", async (context) => {
	const server = await Lwm2mServer.start({ awakeTimeMs: 100 });
	try {
		const { client, endpoint } = context;
		const reply = await client.send(server, "POST", "/rd", `ep=${endpoint}&lt=300&lwm2m=1.1&b=U&Q`, "</5/0>");
		assert.is(reply.code, "2.01");
		const registration = server.registration(endpoint)!;
		assert.ok(registration.queueMode);
		client.handler = (_request, response) => {
			response.code = "2.04";
			response.end();
		};
		await new Promise((resolve) => server.once("sleep", resolve));
		assert.is(registration.awake, false);
		const write = server.write(endpoint, "/5/0/1", "coap://127.0.0.1/app.bin");
		const execute = server.execute(endpoint, "/5/0/2");
		assert.is(server.queued(endpoint), 2);
		await new Promise((resolve) => setTimeout(resolve, 300));
		assert.equal(client.requests, [], "nothing sent to the sleeping client");
		assert.is((await client.send(server, "POST", reply.location)).code, "2.04");
		assert.equal([await write, await execute], ["2.04", "2.04"]);
		assert.equal(client.requests.map((request) => `${request.method} ${request.path}`), ["PUT /5/0/1", "POST /5/0/2"], "in the order asked");
		assert.is(server.queued(endpoint), 0);
	}
	finally {
		await server.close();
	}
});

lwm2m("registering the same endpoint again replaces it; an unrenewed registration expires", async (context) => {
	const first = await registered(context);
	const second = await context.client.register(context.server, context.endpoint, 1);
	assert.is(second.code, "2.01");
	assert.is.not(second.location, first.location);
	assert.is((await context.client.send(context.server, "POST", first.location)).code, "4.04", "the old location is gone");
	const registeredAt = Date.now();
	await new Promise<void>((resolve) => context.server.once("deregister", () => resolve()));
	assert.ok(Date.now() - registeredAt >= 1000, "not before its lifetime");
	assert.is(context.server.registration(context.endpoint), undefined);
	await rejects(context.server.waitForRegistration(context.endpoint, 50), /no registration/);
});

lwm2m("reads go from the server's own port with Accept, and each format decodes", async (context) => {
	await registered(context);
	const { server, client, endpoint } = context;
	client.handler = content(11542, deviceTlv);
	assert.equal(await server.read(endpoint, "/3/0", "tlv"), { code: "2.05", format: "tlv", value: deviceValue });
	assert.is(client.requests[0].port, server.port, "from the port the client registered with");
	assert.is(client.requests[0].method, "GET");
	assert.is(client.requests[0].path, "/3/0");
	assert.is(accepted(client.requests[0]), 11542);

	client.handler = content(11542, deviceTlv.subarray(0, 23));
	assert.equal((await server.read(endpoint, "/3/0/0", "tlv")).value, "Open Mobile Alliance");
	client.handler = content(11542, hex("86 06 41 00 01 41 01 05"));
	assert.equal((await server.read(endpoint, "/3/0/6", "tlv")).value, { 0: 1, 1: 5 });

	client.handler = content(110, deviceSenml);
	assert.equal(await server.read(endpoint, "/3/0", "senml-json"), { code: "2.05", format: "senml-json", value: deviceValue });
	assert.is(accepted(client.requests[3]), 110);

	client.handler = content(112, firmwareCbor);
	assert.equal((await server.read(endpoint, "/5/0", "senml-cbor")).value, { 3: 1, 5: 0, 1: "coap://x", 14: true, 0: Buffer.of(1, 2) });

	client.handler = content(0, "100");
	assert.equal(await server.read(endpoint, "/3/0/9", "text"), { code: "2.05", format: "text", value: 100 });
	client.handler = content(0, "Open Mobile Alliance");
	assert.is((await server.read(endpoint, "/3/0/0")).value, "Open Mobile Alliance");
	assert.is(accepted(client.requests[6]), undefined, "no Accept when no format is asked");

	client.handler = content(42, Buffer.of(0, 1, 2, 255));
	assert.equal((await server.read(endpoint, "/3/0/17", "opaque")).value, Buffer.of(0, 1, 2, 255));

	client.handler = (_request, response) => {
		response.code = "4.04";
		response.end();
	};
	assert.equal(await server.read(endpoint, "/3/1"), { code: "4.04" });
});

lwm2m("a representation larger than one datagram is read by Block2", async (context) => {
	await registered(context);
	const model = "M".repeat(3000);
	context.client.handler = content(0, model);
	assert.equal(await context.server.read(context.endpoint, "/3/0/1", "text"), { code: "2.05", format: "text", value: model });
	// The client's library answers later blocks from its own cache, so count the GETs on the wire.
	const gets = context.client.received.filter((packet) => packet.code === "0.01").length;
	assert.is(gets, 3, "three 1024-byte blocks");
});

lwm2m("writes carry Content-Format and the encoding a device decodes; execute, discover, attributes", async (context) => {
	await registered(context);
	const { server, client, endpoint } = context;
	client.handler = (_request, response) => {
		response.code = "2.04";
		response.end();
	};
	const format = (seen: Seen) => {
		const value = seen.options.find((option) => option.name === "Content-Format")?.value as unknown;
		return typeof value === "string" ? value : Number(value);
	};
	assert.is(await server.write(endpoint, "/5/0/1", "coap://h/fw"), "2.04");
	assert.equal([client.requests[0].method, client.requests[0].payload.toString(), format(client.requests[0])], ["PUT", "coap://h/fw", "text/plain"]);
	assert.is(await server.write(endpoint, "/5/0/1", "coap://h/fw", { format: "tlv" }), "2.04");
	assert.equal(client.requests[1].payload, Buffer.concat([hex("C8 01 0B"), Buffer.from("coap://h/fw")]));
	assert.is(format(client.requests[1]), "application/vnd.oma.lwm2m+tlv");
	assert.is(await server.write(endpoint, "/5/0", { 1: "x", 13: 300 }, { format: "senml-json", partial: true }), "2.04");
	assert.is(client.requests[2].method, "POST");
	assert.equal(JSON.parse(client.requests[2].payload.toString()), [{ bn: "/5/0/", n: "1", vs: "x" }, { n: "13", v: 300 }]);
	assert.is(await server.write(endpoint, "/5/0", { 1: "x", 13: 300 }, { format: "senml-cbor", partial: true }), "2.04");
	assert.equal(client.requests[3].payload, hex("82 a3 21 65 2f352f302f 00 61 31 03 61 78 a2 00 62 3133 02 19 012c"));
	assert.is(await server.write(endpoint, "/5/0/0", Buffer.of(1, 2, 3)), "2.04");
	assert.equal([client.requests[4].payload, format(client.requests[4])], [Buffer.of(1, 2, 3), "application/octet-stream"]);

	assert.is(await server.execute(endpoint, "/5/0/2"), "2.04");
	assert.equal([client.requests[5].method, client.requests[5].path, client.requests[5].payload.length], ["POST", "/5/0/2", 0]);
	assert.is(await server.writeAttributes(endpoint, "/5/0/3", { pmin: 1, pmax: 30 }), "2.04");
	assert.equal([client.requests[6].method, client.requests[6].query, client.requests[6].payload.length], ["PUT", ["pmin=1", "pmax=30"], 0]);

	client.handler = content(40, "</5/0>,</5/0/1>,</5/0/3>;pmax=30");
	assert.equal(await server.discover(endpoint, "/5/0"), { code: "2.05", links: "</5/0>,</5/0/1>,</5/0/3>;pmax=30" });
	assert.is(accepted(client.requests[7]), 40);
});

lwm2m("observe: the first value, two CON notifications ACKed and collected, then cancel", async (context) => {
	await registered(context);
	const { server, client, endpoint } = context;
	let notify: ((payload: string) => void) | undefined;
	client.handler = (request, response) => {
		response.setOption("Content-Format", Buffer.alloc(0));
		if (request.headers.Observe === 0) {
			notify = (payload) => response.write(payload);
			notify("0");
		}
		else response.end("3");
	};
	const notified: { path: string; value: unknown }[] = [];
	server.on("notify", (event: { path: string; value: unknown }) => notified.push(event));
	const observation = await server.observe(endpoint, "/5/0/3", "text");
	assert.is(observation.code, "2.05");
	assert.is(observation.value, 0);
	const acks = () => client.received.filter((packet) => packet.ack && packet.code === "0.00").length;
	const acksBefore = acks();
	notify!("1");
	notify!("2");
	const deadline = Date.now() + 5000;
	while ((observation.notifications.length < 2 || acks() < acksBefore + 2) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
	assert.equal(observation.notifications.map((notification) => [notification.value, notification.sequence]), [[1, 2], [2, 3]]);
	assert.equal(notified.map((event) => [event.path, event.value]), [["/5/0/3", 1], ["/5/0/3", 2]]);
	assert.is(acks(), acksBefore + 2, "each CON notification ACKed");
	const token = client.received.find((packet) => packet.code === "0.01")!.token;
	await observation.cancel();
	const cancel = client.received.filter((packet) => packet.code === "0.01").at(-1)!;
	assert.equal(cancel.token, token, "the cancel uses the observation's token");
	assert.equal(cancel.options.find((option) => option.name === "Observe")!.value, Buffer.of(1));
});

lwm2m("a new registration ends the old observations: a late notification is refused with RST", async (context) => {
	await registered(context);
	const { server, client, endpoint } = context;
	let notify: ((payload: string) => void) | undefined;
	client.handler = (_request, response) => {
		response.setOption("Content-Format", uintOption(0));
		notify = (payload) => response.write(payload);
		notify("1");
	};
	const observation = await server.observe(endpoint, "/5/0/3", "text");
	assert.is((await client.register(server, endpoint)).code, "2.01");
	const resets = () => client.received.filter((packet) => packet.reset).length;
	notify!("2");
	const deadline = Date.now() + 5000;
	while (resets() === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
	assert.is(resets(), 1);
	assert.equal(observation.notifications, []);
	const gets = client.requests.length;
	await observation.cancel();
	assert.is(client.requests.length, gets, "nothing left to cancel on the client");
});

lwm2m("push: a 5 KB package goes by Block1 PUT in order, each block after its 2.31", async (context) => {
	await registered(context);
	const { server, client, endpoint } = context;
	const bytes = firmwareBytes(5000, "push");
	let received: Buffer | undefined;
	client.handler = (request, response) => {
		received = request.payload;
		response.code = "2.04";
		response.end();
	};
	assert.is(await server.push(endpoint, "/5/0/0", bytes, { blockSize: 512 }), "2.04");
	assert.equal(received, bytes);
	const blocks = client.received.filter((packet) => packet.code === "0.03").map((packet) => {
		const value = packet.options.find((option) => option.name === "Block1")!.value;
		const number = value.readUIntBE(0, value.length);
		return [number >> 4, (number >> 3) & 1, 16 << (number & 7), packet.payload.length];
	});
	assert.equal(blocks, Array.from({ length: 10 }, (_, i) => [i, i < 9 ? 1 : 0, 512, i < 9 ? 512 : 5000 - 9 * 512]));
	await rejects(server.push(endpoint, "/5/0/0", bytes, { blockSize: 500 }), /power of two/);
});

lwm2m.run();

// The CoAP package server, asked block by block the way a resuming client asks.

type FileContext = { files: CoapFileServer; socket: dgram.Socket };
const fileServer = suite<FileContext>("coap file server", { files: undefined as unknown as CoapFileServer, socket: undefined as unknown as dgram.Socket });

fileServer.before.each(async (context) => {
	context.files = await CoapFileServer.start();
	context.socket = dgram.createSocket("udp4");
	await new Promise<void>((resolve) => context.socket.bind(0, "127.0.0.1", () => resolve()));
});

fileServer.after.each(async (context) => {
	await context.files.close();
	await new Promise<void>((resolve) => context.socket.close(() => resolve()));
});

let messageId = 1;

/** One CON GET with a fresh token and message id; the piggybacked answer, or undefined after `waitMs`. */
function get(context: FileContext, path: string, block2?: { num: number; szx: number }, waitMs = 2000): Promise<ParsedPacket | undefined> {
	const token = Buffer.from(createHash("sha256").update(String(messageId)).digest().subarray(0, 4));
	const options: { name: string; value: Buffer }[] = path.split("/").filter(Boolean).map((part) => ({ name: "Uri-Path", value: Buffer.from(part) }));
	if (block2) options.push({ name: "Block2", value: uintOption((block2.num << 4) | block2.szx) });
	const mid = messageId++;
	return new Promise((resolve) => {
		const timer = setTimeout(() => finish(undefined), waitMs);
		const receive = (message: Buffer) => {
			const packet = parse(message);
			if (packet.messageId === mid && packet.token.equals(token)) finish(packet);
		};
		const finish = (packet: ParsedPacket | undefined) => {
			clearTimeout(timer);
			context.socket.off("message", receive);
			resolve(packet);
		};
		context.socket.on("message", receive);
		context.socket.send(generate({ code: "GET", confirmable: true, messageId: mid, token, options }), context.files.port, "127.0.0.1");
	});
}

function option(packet: ParsedPacket, name: string): Buffer | undefined {
	return packet.options.find((item) => item.name === name)?.value;
}

function block(packet: ParsedPacket): { num: number; more: boolean; size: number } {
	const value = option(packet, "Block2")!;
	const number = value.length ? value.readUIntBE(0, value.length) : 0;
	return { num: number >> 4, more: Boolean(number & 8), size: 16 << (number & 7) };
}

fileServer("block 7 first (a resume), then block 0 with Size2, then the last block; counters agree", async (context) => {
	const bytes = firmwareBytes(20000, "pkg");
	context.files.serve("/fw/app.bin", bytes);
	assert.is(context.files.url("/fw/app.bin"), `coap://127.0.0.1:${context.files.port}/fw/app.bin`);
	const seventh = (await get(context, "/fw/app.bin", { num: 7, szx: 6 }))!;
	assert.is(seventh.code, "2.05");
	assert.ok(seventh.ack);
	assert.equal(block(seventh), { num: 7, more: true, size: 1024 });
	assert.equal(seventh.payload, bytes.subarray(7 * 1024, 8 * 1024));
	const etag = option(seventh, "ETag")!;
	assert.ok(etag.length >= 1 && etag.length <= 8);
	assert.is(option(seventh, "Size2"), undefined, "Size2 only on the first block");
	const first = (await get(context, "/fw/app.bin"))!;
	assert.equal(block(first), { num: 0, more: true, size: 1024 });
	assert.is(option(first, "Size2")!.readUIntBE(0, option(first, "Size2")!.length), 20000);
	assert.equal(option(first, "ETag"), etag);
	const last = (await get(context, "/fw/app.bin", { num: 312, szx: 2 }))!;
	assert.equal(block(last), { num: 312, more: false, size: 64 });
	assert.equal(last.payload, bytes.subarray(312 * 64));
	assert.is((await get(context, "/fw/app.bin", { num: 20, szx: 6 }))!.code, "4.02", "past the end");
	assert.is((await get(context, "/fw/other.bin"))!.code, "4.04");
	assert.equal(context.files.stats, { requests: 5, blocks: 3, bytes: 1024 + 1024 + 20000 - 312 * 64 });
});

fileServer("replace() mid-download: the next block carries a new ETag and the new bytes", async (context) => {
	const old = firmwareBytes(8000, "v1"), fresh = firmwareBytes(8000, "v2");
	context.files.serve("/app.bin", old);
	const before = (await get(context, "/app.bin", { num: 2, szx: 5 }))!;
	context.files.replace("/app.bin", fresh);
	const after = (await get(context, "/app.bin", { num: 3, szx: 5 }))!;
	assert.not.equal(option(after, "ETag"), option(before, "ETag"));
	assert.equal(after.payload, fresh.subarray(3 * 512, 4 * 512));
	assert.throws(() => context.files.replace("/missing.bin", fresh), /no file/);
});

fileServer("faults: every Nth request dropped unanswered, every Mth answered 5.03 with Max-Age", async (context) => {
	context.files.serve("/app.bin", firmwareBytes(3000, "faults"));
	context.files.faults = { dropEvery: 3 };
	const answers = [];
	for (let i = 0; i < 4; i++) answers.push((await get(context, "/app.bin", { num: i % 2, szx: 6 }, 300))?.code);
	assert.equal(answers, ["2.05", "2.05", undefined, "2.05"]);
	context.files.faults = { unavailableEvery: 2 };
	const busy = (await get(context, "/app.bin"))!;
	assert.is(busy.code, "2.05");
	const unavailable = (await get(context, "/app.bin"))!;
	assert.is(unavailable.code, "5.03");
	assert.ok(option(unavailable, "Max-Age")!.readUIntBE(0, 1) >= 1);
	assert.is(context.files.stats.requests, 6);
});

fileServer.run();

// The host's codecs on their own: what they write, they read back.
const codecs = suite("lwm2m formats");

codecs("each format writes what it reads, for resources, multi-instance resources and instances", () => {
	const instance = { 0: "Open Mobile Alliance", 6: { 0: 1, 1: 5 }, 9: 100, 13: 1367491215, 22: { 0: "3:0" } };
	for (const format of ["tlv", "senml-json", "senml-cbor"] as const) {
		assert.equal(decode(format, "/3/0", encode(format, "/3/0", instance)), instance, format);
		assert.equal(decode(format, "/3", encode(format, "/3", { 0: instance })), { 0: instance }, format);
		assert.equal(decode(format, "/5/0/1", encode(format, "/5/0/1", "coap://x")), "coap://x", format);
	}
	assert.equal(encode("tlv", "/3/0", deviceValue), deviceTlv, "the OMA example, byte for byte");
	assert.equal(decode("tlv", "/3/0/22", encode("tlv", "/3/0/22", { 0: "3:0" })), { 0: "3:0" });
	assert.equal(encode("tlv", "/1/0/10", "3:1"), hex("C4 0A 0003 0001"));
	assert.equal(decode("text", "/1/0/6", Buffer.from("1")), true);
	assert.throws(() => decode("tlv", "/3/0", hex("C8 00 14 4F")), /truncated tlv/);
	assert.throws(() => decode("tlv", "/3", hex("C1 09 64")), /does not match the path/, "a resource where instances belong");
	assert.equal(decode("tlv", "/3/0", hex("08 00 03 C1 09 64")), { 9: 100 }, "an instance wrapped in its own TLV");
	assert.throws(() => decode("text", "/3/0/9", Buffer.from("ten")), /bad number/);
	assert.throws(() => encode("text", "/3/0", { 0: "x" }), /one resource/);
	assert.throws(() => decode("senml-json", "/3/0", Buffer.from(`[{"n":"/5/0/1","vs":"x"}]`)), /outside/);
});

codecs.run();

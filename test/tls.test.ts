// TLS end to end against real servers with a throwaway PKI: HTTPS pulls from Debian's nginx (cut and resumed;
// every way a server's certificate can fail), and AWS IoT jobs over mosquitto with mutual TLS (cut and resumed;
// a board without its certificate or with one from another CA). Every failure ends in its documented result and
// reason within a bounded time, with the factory image still running.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createSecureServer } from "node:https";
import type { AddressInfo } from "node:net";
import { startNginx, type NginxServer } from "../host-sim/server/nginx";
import { startMosquitto, type MosquittoTlsServer } from "../host-sim/server/mosquitto";
import { startAwsIot, type AwsIot } from "../host-sim/server/aws-iot";
import { defaultFragmentBytes } from "../host-sim/board/network";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import type { Credentials } from "../host-sim/credentials";
import type { DeviceOptions } from "../host-sim/device";
import { makePki, type Pki } from "./support/pki";
import { assertNewFirmware, assertOldFirmware, publish, remainingOps, run, seeded, tempDir, traced, type Traced } from "./support/sim";

const refetchPerCut = 16384 + defaultFragmentBytes;
/** Virtual time a refused update may take: three handshakes and their backoff, with room to spare. */
const boundMs = 60_000;
let pki: Pki;
let www: string;
const nginx: { [name: string]: NginxServer } = {};
let mosquitto: MosquittoTlsServer;
let aws: AwsIot;
let things = 0;
let clientCas: string;

test.before(async () => {
	pki = makePki();
	www = tempDir("tls-www");
	const servers = { chain: pki.server.chainPem, leafOnly: pki.server.certPem, wrongName: pki.wrongName.chainPem, expired: pki.expired.chainPem };
	for (const [name, certPem] of Object.entries(servers))
		nginx[name] = await startNginx({ dir: www, tls: { certPem, keyPem: certPem === pki.server.certPem ? pki.server.keyPem : keyOf(certPem) } });
	// A board presents its certificate alone (as AWS IoT devices do), so the broker knows the issuing CA too.
	clientCas = `${pki.dir}/client-cas.pem`;
	fs.writeFileSync(clientCas, fs.readFileSync(pki.root.certPem, "utf8") + fs.readFileSync(pki.intermediate.certPem, "utf8"));
	mosquitto = await startMosquitto({ tls: { caPem: clientCas, certPem: pki.server.chainPem, keyPem: pki.server.keyPem, requireCertificate: true } });
	aws = await startAwsIot({ broker: { url: mosquitto.url } });
});
test.after(async () => {
	await aws.close();
	await mosquitto.close();
	for (const server of Object.values(nginx)) await server.close();
	fs.rmSync(www, { recursive: true, force: true });
	pki.close();
});

function keyOf(chainPem: string): string {
	for (const cert of [pki.server, pki.wrongName, pki.expired]) if (cert.chainPem === chainPem) return cert.keyPem;
	throw new Error(`no key for ${chainPem}`);
}

const trustingRoot = (): Credentials => ({ ca: pki.root.certDer });

function reportedReason(outcome: Traced): unknown {
	return outcome.events.find((event) => event.event === "result")?.reason;
}

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: an HTTPS update from nginx survives two power cuts, byte for byte`, async () => {
		const image = publish(www, `tls-${engine}.bin`, 512 * 1024, "3.0.0");
		const board = tempDir("board");
		const random = seeded(engine === "xs" ? 23 : 29);
		let url: string | undefined = `${nginx.chain.url}/tls-${engine}.bin`;
		let fetched = 0;
		for (let cut = 0; cut < 2; cut++) {
			const left = url ? 300 : await remainingOps(board, engine);
			const outcome = await run({ dir: board, engine, url, credentials: trustingRoot(), cutAfterOps: left - Math.floor(random() * left * 0.8) });
			url = undefined;
			assert.is(outcome.end, "power-cut", `cut ${cut + 1}`);
			fetched += outcome.bytesFetched;
		}
		const final = await run({ dir: board, engine, credentials: trustingRoot() });
		fetched += final.bytesFetched;
		assertNewFirmware(final, image.sha256, "3.0.0", "after two cuts");
		assert.ok(fetched <= image.bytes.length + 2 * refetchPerCut, `fetched ${fetched}`);
	});
}

test("credentials provisioned into the preference store serve as well as built-in ones", async () => {
	const image = publish(www, "provisioned.bin", 64 * 1024, "3.0.1");
	const outcome = await run({ dir: tempDir("board"), url: `${nginx.chain.url}/provisioned.bin`, credentials: trustingRoot(), provisioned: true });
	assertNewFirmware(outcome, image.sha256, "3.0.1", "provisioned ca");
});

const refusals: { name: string; server: string; credentials: () => Credentials | undefined; reason: string }[] = [
	{ name: "a server from another CA", server: "chain", credentials: () => ({ ca: pki.otherRoot.certDer }), reason: "tls: certificate not trusted" },
	{ name: "a certificate for another name", server: "wrongName", credentials: trustingRoot, reason: "tls: name mismatch" },
	{ name: "an expired certificate", server: "expired", credentials: trustingRoot, reason: "tls: certificate expired" },
	{ name: "a server that sends only its leaf", server: "leafOnly", credentials: trustingRoot, reason: "tls: chain incomplete" },
	{ name: "a board that ships no CA", server: "chain", credentials: () => undefined, reason: "tls: no trusted ca certificate" },
];

for (const engine of ["node", "xs"] as const) {
	for (const { name, server, credentials, reason } of refusals) {
		test(`${engine}: ${name} ends with 7 (${reason}) within a bounded time`, async () => {
			const file = `refused-${engine}.bin`;
			publish(www, file, 64 * 1024, "3.1.0");
			const start = Date.parse("2026-06-01T00:00:00Z");
			const outcome = await traced({ dir: tempDir("board"), engine, url: `${nginx[server].url}/${file}`, credentials: credentials(), startTime: start });
			assertOldFirmware(outcome, 7, name);
			assert.is(reportedReason(outcome), reason);
			assert.is(outcome.bytesFetched, 0, "nothing written from an untrusted server");
			assert.ok(outcome.wallTime - start < boundMs, `took ${outcome.wallTime - start} ms`);
		});
	}
}

async function listen(server: Server): Promise<string> {
	await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
	return `127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test("a redirect from http to https is followed; one from https to http is refused with 7", async () => {
	const image = publish(www, "redirected.bin", 64 * 1024, "3.2.0");
	const plain = createServer((_request, response) => response.writeHead(302, { location: `${nginx.chain.url}/redirected.bin` }).end());
	const secure = createSecureServer({ cert: fs.readFileSync(pki.server.chainPem), key: fs.readFileSync(pki.server.keyPem) },
		(_request, response) => response.writeHead(302, { location: `http://${plainAddress}/anything.bin` }).end());
	const plainAddress = await listen(plain), secureAddress = await listen(secure);
	try {
		const upgraded = await run({ dir: tempDir("board"), url: `http://${plainAddress}/app.bin`, credentials: trustingRoot() });
		assertNewFirmware(upgraded, image.sha256, "3.2.0", "http → https");
		const downgraded = await traced({ dir: tempDir("board"), url: `https://${secureAddress}/app.bin`, credentials: trustingRoot() });
		assertOldFirmware(downgraded, 7, "https → http");
		assert.is(reportedReason(downgraded), "redirect from https to http refused");
	}
	finally {
		plain.close();
		secure.close();
	}
});

// AWS IoT jobs over mosquitto with mutual TLS: the emulator joins mosquitto's plain listener, the boards its TLS one.

const identity = (): Credentials => ({ ca: pki.root.certDer, cert: pki.client.certDer, key: pki.client.keyDer });

function board(thing: string, options: Partial<DeviceOptions> & { dir: string }): Promise<Traced> {
	return traced({ engine: "node", credentials: identity(), ...options, mqtt: mosquitto.tlsUrl, thing,
		config: { blockTimeoutMs: 300, statusRetryMs: 300, reconnectBaseMs: 100, ...options.config } });
}

for (const engine of ["node", "xs"] as const) {
	test(`${engine}: an AWS IoT job over mutual TLS survives power cuts and ends SUCCEEDED exactly once`, async () => {
		const thing = `tls-${engine}-${++things}`;
		const image = makeAppImage({ size: 256 * 1024, version: "4.0.0" });
		const job = aws.createJob(thing, { image, form: "fota", version: "4.0.0" });
		const dir = tempDir("board");
		const random = seeded(engine === "xs" ? 31 : 37);
		for (let cut = 0; cut < 3; cut++) {
			const outcome = await board(thing, { dir, engine, cutAfterOps: 1 + Math.floor(random() * 60) });
			assert.is(outcome.end, "power-cut", `cut ${cut + 1}`);
		}
		const final = await board(thing, { dir, engine });
		assertNewFirmware(final, sha256Hex(image), "4.0.0", "after three cuts");
		const execution = aws.executions(thing).find((e) => e.jobId === job.jobId)!;
		assert.is(execution.status, "SUCCEEDED");
		assert.is(execution.updates.filter((u) => u.outcome === "accepted" && u.status === "SUCCEEDED").length, 1);
	});
}

const brokerRefusals: { name: string; credentials: () => Credentials; reason: string }[] = [
	{ name: "a board without a client certificate", credentials: () => ({ ca: pki.root.certDer }), reason: "tls: client certificate required" },
	{ name: "a client certificate from another CA", credentials: () => ({ ca: pki.root.certDer, cert: pki.otherClient.certDer, key: pki.otherClient.keyDer }), reason: "tls: client certificate refused" },
	{ name: "a broker the board does not trust", credentials: () => ({ "mqtt-ca": pki.otherRoot.certDer, cert: pki.client.certDer, key: pki.client.keyDer }), reason: "tls: certificate not trusted" },
	{ name: "an EC client key (Moddable's TLS signs with RSA only)", credentials: () => ({ ca: pki.root.certDer, cert: pki.ecClient.certDer, key: pki.ecClient.keyDer }), reason: "tls: client key must be rsa" },
];

for (const { name, credentials, reason } of brokerRefusals) {
	test(`${name} is refused: the jobs client stops with "${reason}", the factory image runs`, async () => {
		const thing = `refused-${++things}`;
		aws.createJob(thing, { image: makeAppImage({ size: 64 * 1024, version: "4.1.0" }), form: "fota", version: "4.1.0" });
		const start = Date.parse("2026-06-01T00:00:00Z");
		const outcome = await board(thing, { dir: tempDir("board"), credentials: credentials(), startTime: start });
		assertOldFirmware(outcome, 0, name);
		assert.equal(outcome.events.filter((event) => event.event === "unreachable").map((event) => event.reason), [reason]);
		assert.ok(outcome.wallTime - start < boundMs, `took ${outcome.wallTime - start} ms`);
		assert.is(aws.executions(thing)[0].status, "QUEUED", "the job waits for a board that can connect");
	});
}

test("AWS IoT Core on 443: the board offers ALPN x-amzn-mqtt-ca and its job succeeds over TLS", async () => {
	const core = await startAwsIot({ tls: { certPem: pki.server.chainPem, keyPem: pki.server.keyPem, clientCaPem: clientCas, alpn: ["x-amzn-mqtt-ca"] } });
	try {
		const thing = `alpn-${++things}`;
		const image = makeAppImage({ size: 64 * 1024, version: "4.2.0" });
		core.createJob(thing, { image, form: "fota", version: "4.2.0" });
		const outcome = await traced({ dir: tempDir("board"), credentials: identity(), mqtt: core.url, thing, config: { mqttAlpn: "x-amzn-mqtt-ca", reconnectBaseMs: 100 } });
		assertNewFirmware(outcome, sha256Hex(image), "4.2.0", "alpn");
		assert.equal(core.alpnSeen(), ["x-amzn-mqtt-ca"]);
	}
	finally {
		await core.close();
	}
});

test.run();

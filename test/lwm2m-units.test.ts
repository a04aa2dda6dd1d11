// Unit tests of the LwM2M client's pure parts: the content formats (TLV bytes from the OMA specification's own
// example, SenML JSON and CBOR), the write checks, and the observation attributes (pmin, pmax, gt, lt, st) on
// a fake clock, including what survives a reboot.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { ContentFormat } from "../src/coap/message";
import { decodeEntries, encodeEntries } from "../src/lwm2m/content-format";
import { type Entry, Kind, coerce } from "../src/lwm2m/model";
import { Observations, type Observation, type Snapshot } from "../src/lwm2m/observations";
import { decodeSenmlCbor, decodeSenmlJson, encodeSenmlCbor, encodeSenmlJson } from "../src/lwm2m/senml";
import { Session } from "../src/lwm2m/session";
import { PackageReader } from "../src/lwm2m/package-reader";
import { contentFormats, encode, type Lwm2mFormat } from "../host-sim/server/lwm2m-formats";
import { createHash } from "node:crypto";
import { decodeTlv, encodeTlv } from "../src/lwm2m/tlv";
import { FakeClock } from "./support/fake-clock";
import { PreferenceStore } from "../host-sim/board/nvs";
import { PowerCutError, PowerSupply } from "../host-sim/board/power";
import { type Provisioning, ProvisioningStore, check } from "../src/lwm2m/provisioning";
import { tempDir } from "./support/sim";
import { MemoryStore } from "./support/memory-store";

function hex(text: string): Uint8Array {
	return new Uint8Array(Buffer.from(text.replace(/\s/g, ""), "hex"));
}

function toHex(bytes: Uint8Array): string {
	return Buffer.from(bytes).toString("hex");
}

// The Device object instance of OMA-TS-LightweightM2M-V1_1 Core, §7.4.3 (TLV example), resource by resource.
const device: Entry[] = [
	{ path: [3, 0, 0], kind: Kind.string, value: "Open Mobile Alliance" },
	{ path: [3, 0, 1], kind: Kind.string, value: "Lightweight M2M Client" },
	{ path: [3, 0, 2], kind: Kind.string, value: "345000123" },
	{ path: [3, 0, 3], kind: Kind.string, value: "1.0" },
	{ path: [3, 0, 6, 0], kind: Kind.integer, value: 1 },
	{ path: [3, 0, 6, 1], kind: Kind.integer, value: 5 },
	{ path: [3, 0, 9], kind: Kind.integer, value: 100 },
	{ path: [3, 0, 10], kind: Kind.integer, value: 15 },
	{ path: [3, 0, 11, 0], kind: Kind.integer, value: 0 },
	{ path: [3, 0, 13], kind: Kind.time, value: 1367491215 },
	{ path: [3, 0, 14], kind: Kind.string, value: "+02:00" },
	{ path: [3, 0, 16], kind: Kind.string, value: "U" },
];
const deviceTlv = [
	"c80014", "4f70656e204d6f62696c6520416c6c69616e6365",
	"c80116", "4c69676874776569676874204d324d20436c69656e74",
	"c80209", "333435303030313233",
	"c303", "312e30",
	"8606", "410001", "410105",
	"c10964", "c10a0f",
	"830b", "410000",
	"c40d", "5182428f",
	"c60e", "2b30323a3030",
	"c11055",
].join("");

test("tlv: the specification's Device object example encodes to its exact bytes and decodes back", () => {
	const expected = hex(deviceTlv);
	assert.is(toHex(encodeTlv(device, [3, 0])), toHex(expected));
	const written = decodeTlv(expected, [3, 0]);
	if (typeof written === "string") throw new Error(written);
	assert.equal(written.map((entry) => entry.path.join("/")), device.map((entry) => entry.path.join("/")));
	assert.is(coerce(Kind.string, written[0]), "Open Mobile Alliance");
	assert.is(coerce(Kind.integer, written[5]), 5);
	assert.is(coerce(Kind.time, written[9]), 1367491215);
});

test("tlv: an object wraps instances, a resource is itself, integers take 1, 2, 4 or 8 bytes, negatives too", () => {
	const entries: Entry[] = [{ path: [5, 0, 3], kind: Kind.integer, value: 2 }, { path: [5, 0, 13], kind: Kind.unsigned, value: 604800 }];
	assert.is(toHex(encodeTlv(entries, [5])), "080009" + "c10302" + "c40d00093a80");
	assert.is(toHex(encodeTlv(entries.slice(0, 1), [5, 0, 3])), "c10302");
	assert.is(toHex(encodeTlv([{ path: [1, 0, 1], kind: Kind.integer, value: -300 }], [1, 0, 1])), "c201fed4");
	assert.is(toHex(encodeTlv([{ path: [1, 0, 1], kind: Kind.integer, value: 2 ** 40 }], [1, 0, 1])), "c8010800000100" + "00000000");
	const decoded = decodeTlv(hex("c201fed4"), [1, 0, 1]);
	if (typeof decoded === "string") throw new Error(decoded);
	assert.is(coerce(Kind.integer, decoded[0]), -300);
});

test("tlv: malformed input is refused with a reason, never a throw", () => {
	for (const bad of ["c8", "c80214414141", "08000a c10302", "4100 01"]) {
		const result = decodeTlv(hex(bad.replace(/ /g, "")), [5, 0]);
		assert.type(result, "string", bad);
	}
	// A 3-byte integer is no TLV integer; a boolean of 2 is none either.
	assert.is(coerce(Kind.integer, { path: [1, 0, 1], value: undefined, bytes: hex("000001") }), undefined);
	assert.is(coerce(Kind.boolean, { path: [1, 0, 6], value: undefined, bytes: hex("02") }), undefined);
	assert.is(coerce(Kind.string, { path: [5, 0, 1], value: undefined, bytes: hex("c328") }), undefined, "overlong utf-8");
});

test("senml json: names relative to the instance, each value in its own field, and back", () => {
	const entries: Entry[] = [
		{ path: [5, 0, 1], kind: Kind.string, value: "coap://h/fw.bin" },
		{ path: [5, 0, 3], kind: Kind.integer, value: 1 },
		{ path: [5, 0, 8, 1], kind: Kind.integer, value: 2 },
		{ path: [3, 0, 99], kind: Kind.opaque, value: new Uint8Array([0xfb, 0xff]) },
		{ path: [3, 0, 98], kind: Kind.boolean, value: true },
	];
	const text = encodeSenmlJson(entries.slice(0, 3), [5, 0]);
	assert.is(text, '[{"bn":"/5/0/","n":"1","vs":"coap://h/fw.bin"},{"n":"3","v":1},{"n":"8/1","v":2}]');
	assert.is(encodeSenmlJson(entries.slice(3), [3, 0]), '[{"bn":"/3/0/","n":"99","vd":"-_8"},{"n":"98","vb":true}]');
	const back = decodeSenmlJson('[{"bn":"/5/0/","n":"1","vs":"http://x/a"},{"n":"13","v":60},{"bn":"/3/0/","n":"99","vd":"-_8"}]');
	if (typeof back === "string") throw new Error(back);
	assert.equal(back.map((entry) => [entry.path.join("/"), entry.value]), [["5/0/1", "http://x/a"], ["5/0/13", 60], ["3/0/99", new Uint8Array([0xfb, 0xff])]]);
	for (const bad of ['{"n":"1"}', '[{"bn":"/5/0/","n":"1","vs":3}]', '[{"n":"1","v":1}]', '[{"bn":"/5/x/","n":"1","v":1}]', "[[[[[1]]]]]", "[", '[{"bn":"/5/0/70000","v":1}]'])
		assert.type(decodeSenmlJson(bad), "string", bad);
});

test("senml cbor: integer labels, floats, byte strings; hand-made bytes decode", () => {
	const bytes = encodeSenmlCbor([{ path: [5, 0, 1], kind: Kind.string, value: "coap://x" }, { path: [5, 0, 3], kind: Kind.integer, value: 2 }], [5, 0]);
	// [{-2: "/5/0/", 0: "1", 3: "coap://x"}, {0: "3", 2: 2}]
	assert.is(toHex(bytes), "82" + "a3" + "21652f352f302f" + "006131" + "0368636f61703a2f2f78" + "a2" + "006133" + "0202");
	const float = encodeSenmlCbor([{ path: [3, 0, 7], kind: Kind.float, value: 3.5 }], [3, 0]);
	const decoded = decodeSenmlCbor(float);
	if (typeof decoded === "string") throw new Error(decoded);
	assert.is(decoded[0].value, 3.5);
	// Half-precision 1.5 (f9 3e00) and an opaque vd byte string.
	const hand = decodeSenmlCbor(hex("82a3 21 652f352f302f 00 6130 08 4201 02 a2 00 6137 02 f93e00".replace(/ /g, "")));
	if (typeof hand === "string") throw new Error(hand);
	assert.equal(hand.map((entry) => entry.value), [new Uint8Array([1, 2]), 1.5]);
	assert.type(decodeSenmlCbor(hex("a1")), "string");
});

test("content formats: text and opaque carry one resource only; text parses by the resource's kind", () => {
	const one: Entry[] = [{ path: [5, 0, 3], kind: Kind.integer, value: 2 }];
	assert.is(Buffer.from(encodeEntries(ContentFormat.text, one, [5, 0, 3])!).toString(), "2");
	assert.is(encodeEntries(ContentFormat.text, device, [3, 0]), undefined);
	assert.is(encodeEntries(ContentFormat.opaque, one, [5, 0, 3]), undefined);
	const written = decodeEntries(ContentFormat.text, Buffer.from("86400"), [5, 0, 13], Kind.unsigned);
	assert.equal(written, [{ path: [5, 0, 13], value: 86400, bytes: undefined }]);
	assert.type(decodeEntries(ContentFormat.text, Buffer.from("1e3"), [5, 0, 13], Kind.unsigned), "string");
	assert.type(decodeEntries(ContentFormat.text, Buffer.from("x"), [5, 0], Kind.string), "string");
	assert.type(decodeEntries(9999, Buffer.from("x"), [5, 0, 1], Kind.string), "string");
});

function observed(attributes = {}) {
	const clock = new FakeClock(1.7e12), store = new MemoryStore();
	let value = 0, connected = true;
	const sent: { value: number; at: number }[] = [];
	const wakes: number[] = [];
	const host = {
		snapshot: (): Snapshot => ({ code: 69, payload: new Uint8Array([value]), number: value }),
		notify: (_o: Observation, snapshot: Snapshot, delivered: (ok: boolean) => void) => {
			sent.push({ value: snapshot.number!, at: clock.ticks() });
			delivered(true);
		},
		defaults: () => ({ pmin: 0, pmax: 0 }),
		connected: () => connected,
		wake: () => wakes.push(clock.ticks()),
	};
	const observations = new Observations({ clock, log: () => {} }, new Session(store, () => {}), host);
	observations.setAttributes([3303, 0, 5700], attributes);
	observations.add({ address: "10.0.0.1", port: 5683 }, new Uint8Array([1, 2]), [3303, 0, 5700], ContentFormat.senmlJson, host.snapshot());
	return {
		clock, store, sent, wakes, observations, host,
		set(v: number) { value = v; observations.changed([3303, 0, 5700]); },
		setConnected(c: boolean) { connected = c; },
	};
}

test("observe: pmin holds a change back, pmax sends without one", () => {
	const o = observed({ pmin: 10, pmax: 60 });
	o.clock.advance(2000);
	o.set(1);
	assert.equal(o.sent, [], "held by pmin");
	o.clock.advance(8000);
	assert.equal(o.sent, [{ value: 1, at: 10000 }]);
	o.clock.advance(60000);
	assert.equal(o.sent.map((s) => s.at), [10000, 70000], "pmax after the last one");
});

test("observe: asleep (Queue Mode), a due pmax or a change worth sending wakes the client and goes out once it is back", () => {
	const o = observed({ pmax: 60 });
	o.setConnected(false);
	o.set(0);
	assert.equal(o.wakes, [], "an unchanged value wakes nothing");
	o.clock.advance(60000);
	assert.equal(o.wakes, [60000], "pmax ran out");
	assert.equal(o.sent, []);
	o.setConnected(true);
	o.observations.resume(false);
	assert.equal(o.sent, [{ value: 0, at: 60000 }], "the due notification, unchanged value and all");
	o.setConnected(false);
	o.clock.advance(1000);
	o.set(5);
	assert.equal(o.wakes, [60000, 61000], "a change");
	o.setConnected(true);
	o.observations.resume(false);
	assert.equal(o.sent.map((s) => s.value), [0, 5]);
	o.observations.resume(false);
	assert.equal(o.sent.map((s) => s.value), [0, 5], "sent once");
});

test("observe: gt, lt and st decide for a numeric resource", () => {
	const o = observed({ gt: 50, lt: -10, st: 25 });
	const values = () => o.sent.map((s) => s.value);
	o.set(20);
	assert.equal(values(), [], "20 from 0: under the step, no threshold crossed");
	o.set(30);
	assert.equal(values(), [30], "30 from 0: the step");
	o.set(49);
	assert.equal(values(), [30], "19 from 30");
	o.set(51);
	assert.equal(values(), [30, 51], "crossed gt");
	o.set(-20);
	assert.equal(values(), [30, 51, -20], "crossed lt");
	o.set(-19);
	assert.equal(values(), [30, 51, -20]);
});

test("observe: observations survive a reboot with a sequence past the old one; corrupt records are dropped", () => {
	const o = observed();
	o.set(7);
	const before = o.observations.list[0].sequence;
	const reload = () => {
		const session = new Session(o.store, () => {});
		session.load();
		const observations = new Observations({ clock: o.clock, log: () => {} }, session, o.host);
		observations.restore();
		return observations;
	};
	const again = reload();
	assert.is(again.list.length, 1);
	assert.ok(again.list[0].sequence > before + 1000);
	assert.equal([...again.list[0].token], [1, 2]);
	o.store.set("lw.session", '{"observations":[{"a":"10.0.0.1","p":99999,"t":"zz","path":"/3/0","f":110,"s":1}, 3, null]}');
	assert.is(reload().list.length, 0);
	o.store.set("lw.session", "{not json");
	assert.is(reload().list.length, 0);
});

test("observe: attributes refuse pmax below pmin and lt above gt", () => {
	const o = observed();
	assert.not.ok(o.observations.setAttributes([3, 0], { pmin: 30, pmax: 10 }));
	assert.not.ok(o.observations.setAttributes([3303, 0, 5700], { lt: 50, gt: 10 }));
	assert.ok(o.observations.setAttributes([3, 0], { pmin: 5 }));
	assert.is(o.observations.attributesAt([3, 0, 1]).pmin, 5, "inherited from the instance");
	assert.ok(o.observations.setAttributes([3, 0], { pmin: undefined }));
	assert.is(o.observations.attributesAt([3, 0, 1]).pmin, 0, "cleared: the server's default");
});

// The Package (/5/0/0) out of a write in each format an Opaque resource may be written in, part by part.

function readPackage(format: number, wire: Uint8Array, partBytes: number): { bytes: Buffer; error: string | undefined } {
	const reader = new PackageReader(format), out: Buffer[] = [];
	for (let at = 0; at < wire.length; at += partBytes) {
		const error = reader.feed(wire.subarray(at, at + partBytes), (bytes) => (out.push(Buffer.from(bytes)), true));
		if (error) return { bytes: Buffer.concat(out), error };
	}
	return { bytes: Buffer.concat(out), error: reader.end() };
}

const packageBytes = Buffer.concat(Array.from({ length: 160 }, (_, i) => createHash("sha256").update(String(i)).digest())).subarray(0, 5001);

test("package reader: opaque, TLV, SenML CBOR and SenML JSON give the package back, whatever the parts", () => {
	for (const format of ["opaque", "tlv", "senml-cbor", "senml-json"] as Lwm2mFormat[]) {
		const wire = encode(format, "/5/0/0", packageBytes);
		for (const partBytes of [1, 7, 16, 1024, wire.length]) {
			const { bytes, error } = readPackage(contentFormats[format], wire, partBytes);
			assert.is(error, undefined, `${format} in ${partBytes}-byte parts`);
			assert.ok(bytes.equals(packageBytes), `${format} in ${partBytes}-byte parts`);
		}
	}
	// An indefinite map and byte string in chunks, a name split into bn and n, a float time and a text label skipped.
	const cbor = hex("81 bf 00 61 30 21 65 2f352f302f 06 f9 3e00 63 766c6f 63 333a30 08 5f 42 0102 41 03 40 ff ff");
	for (const partBytes of [1, 3, cbor.length]) assert.equal(readPackage(ContentFormat.senmlCbor, cbor, partBytes), { bytes: Buffer.of(1, 2, 3), error: undefined });
	// White space, standard base64 with padding, a time before vd.
	const json = Buffer.from(' [ { "bn" : "/5/0/", "t": -1.5e3, "n":"0" ,\n "vd" : "AQID/w==" } ] ');
	for (const partBytes of [1, 5, json.length]) assert.equal(readPackage(ContentFormat.senmlJson, json, partBytes), { bytes: Buffer.of(1, 2, 3, 255), error: undefined });
	assert.equal(readPackage(ContentFormat.senmlJson, Buffer.from('[{"bn":"/5/0/0","vd":"-_8"}]'), 4), { bytes: Buffer.of(0xfb, 0xff), error: undefined });
	// Long strings and words to skip, escapes inside, in one part: the loop that skips them runs per byte.
	const long = Buffer.from(`[{"vs":"${'x\\"'.repeat(3000)}","t":${"1".repeat(5000)},"vd":"AQID"}]`);
	assert.equal(readPackage(ContentFormat.senmlJson, long, long.length), { bytes: Buffer.of(1, 2, 3), error: undefined });
});

test("package reader: a part that is not what its format says is refused with a reason", () => {
	const refused = (format: number, wire: Uint8Array) => readPackage(format, wire, 3).error;
	assert.is(refused(ContentFormat.tlv, hex("c1 01 05")), "tlv: the package is resource 0");
	assert.is(refused(ContentFormat.tlv, hex("08 00 03 c1 00 05")), "tlv: the package is one resource element");
	assert.is(refused(ContentFormat.tlv, hex("c2 00 0102 03")), "tlv: bytes after the package");
	assert.is(refused(ContentFormat.tlv, hex("c8 00 05 0102")), "tlv: package cut short");
	assert.is(refused(ContentFormat.senmlCbor, hex("82 a1 08 41 01 a1 08 41 02")), "senml cbor: one record only");
	assert.is(refused(ContentFormat.senmlCbor, hex("81 a2 21 66 2f352f302f31 08 41 01")), "senml cbor: the record names another resource");
	assert.is(refused(ContentFormat.senmlCbor, hex("81 a1 08 61 41")), "senml cbor: vd is one byte string");
	assert.is(refused(ContentFormat.senmlCbor, hex("81 a1 08 45 0102")), "senml cbor: record cut short");
	assert.is(refused(ContentFormat.senmlCbor, hex("81 a1 02 01")), "senml cbor: no vd");
	assert.is(refused(ContentFormat.senmlJson, Buffer.from('[{"bn":"/5/0/1","vd":"AQ"}]')), "senml json: the record names another resource");
	assert.is(refused(ContentFormat.senmlJson, Buffer.from('[{"vd":"A*"}]')), "senml json: bad base64");
	assert.is(refused(ContentFormat.senmlJson, Buffer.from('[{"vd":"AQ"},{"vd":"AQ"}]')), "senml json: one record only");
	assert.is(refused(ContentFormat.senmlJson, Buffer.from('[{"vd":"AQ"')), "senml json: record cut short");
	assert.is(refused(ContentFormat.senmlJson, Buffer.from('[{"vd":"AQ","x":{"a":1}}]')), "senml json: unsupported value");
});

/** A provisioning of one NoSec server account at `uri` (plus the factory Bootstrap-Server account). */
function provisioning(uri: string): Provisioning {
	return {
		security: [{ id: 0, uri: "coap://127.0.0.1:5683", bootstrap: true, mode: 3 }, { id: 1, uri, bootstrap: false, mode: 3, ssid: 1 }],
		servers: [{ id: 1, ssid: 1, lifetime: 300, binding: "U" }],
	};
}

test("provisioning commits survive a cut in either op of the preference set: old or new, never none", () => {
	const logs: string[] = [];
	// The simulated board's NVS: a set erases the old value (op 1), then writes the new one (op 2).
	const open = (dir: string, cutAfterOps?: number) => {
		const power = new PowerSupply({ cutAfterOps }), nvs = PreferenceStore.open(dir, power);
		return new ProvisioningStore({ get: (key) => nvs.get("xs-ota", key), set: (key, value) => nvs.set("xs-ota", key, value), delete: (key) => nvs.delete("xs-ota", key) }, (line) => logs.push(line));
	};
	const server = (store: ProvisioningStore) => store.load()?.server.uri;
	for (const cut of [1, 2, undefined]) {
		const dir = tempDir("provisioning");
		for (const uri of ["coap://old:1", "coap://older:1", "coap://old:2"]) {
			const store = open(dir);
			store.load();
			assert.is(store.commit(provisioning(uri)), undefined);
		}
		const store = open(dir, cut);
		assert.is(server(store), "coap://old:2");
		if (cut === undefined) store.commit(provisioning("coap://new:1"));
		else assert.throws(() => store.commit(provisioning("coap://new:1")), (error: unknown) => error instanceof PowerCutError);
		assert.is(server(open(dir)), cut === undefined ? "coap://new:1" : "coap://old:2", `cut at op ${cut}`);
	}
	assert.equal(logs, []);
});

test("provisioning: Finish's consistency check names what is wrong", () => {
	const good = provisioning("coap://host:5683");
	assert.is((check(good) as { uri: string }).uri, "coap://host:5683");
	const variant = (change: (p: Provisioning) => void) => {
		const copy: Provisioning = JSON.parse(JSON.stringify(good));
		change(copy);
		return check(copy);
	};
	assert.is(variant((p) => (p.servers[0].ssid = 2)), "/1/1 names short server id 2, no security account does");
	assert.is(variant((p) => (p.servers = [])), "no server object instance for short server id 1");
	assert.is(variant((p) => (p.security[1].uri = "coaps://host")), "server uri of /0/1 is not coap://host[:port]");
	assert.is(variant((p) => (p.security[1].mode = 0)), "security mode 0 of /0/1: nosec (3) only: this client has no dtls");
	assert.is(variant((p) => p.security.pop()), "no lwm2m server account");
	assert.is(variant((p) => p.security.push({ id: 2, uri: "coap://b", mode: 3, ssid: 2 })), "one lwm2m server account only");
	assert.is(variant((p) => (p.servers[0].lifetime = 30)), "lifetime 30 s below 60 s");
	assert.is(variant((p) => (p.servers[0].binding = "T")), "binding T: udp (U) only");
	assert.is((variant((p) => (p.servers[0].retries = 2)) as { failuresBeforeBootstrap: number }).failuresBeforeBootstrap, 2);
	assert.is((variant((p) => (p.servers[0].bootstrapOnFailure = false)) as { failuresBeforeBootstrap: number }).failuresBeforeBootstrap, 0);
});

test.run();

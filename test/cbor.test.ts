// Unit tests of the stream codecs: CBOR (requests and replies), base64 (JSON payloads, signatures) and hex
// (the request bitmap, MD5). Hostile input must fail with the codec's own short error, never anything else.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { type CborFields, type CborValue, cborSize, decodeCbor, encodeCbor } from "../src/lib/cbor";
import { decodeBase64, decodedBase64Length, encodeBase64, hexDecode, hexEncode } from "../src/lib/base64";

function hex(text: string): Uint8Array {
	return new Uint8Array(Buffer.from(text.replace(/\s/g, ""), "hex"));
}

function encoded(map: CborFields): Uint8Array {
	const bytes = new Uint8Array(cborSize(map));
	assert.is(encodeCbor(map, bytes), bytes.length);
	return bytes;
}

// A seeded generator (mulberry32), so that any failure replays.
function random(seed: number): () => number {
	return () => {
		seed = (seed + 0x6d2b79f5) | 0;
		let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
		t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

function throwsExactly(run: () => unknown, message: string): boolean {
	try {
		run();
		return false;
	}
	catch (error) {
		if (!(error instanceof Error) || error.message !== message) throw new Error(`threw ${String(error)} instead of ${message}`);
		return true;
	}
}

test("cbor: a stream request encodes to the exact bytes, and cborSize is its length", () => {
	const request = { c: "rdy", f: 0, l: 1024, o: 0, n: 2, b: new Uint8Array([0x03]) };
	assert.equal(encoded(request), hex("a6 6163 63726479 6166 00 616c 190400 616f 00 616e 02 6162 4103"));
	assert.equal(encoded({ a: 1, b: "x", t: true, u: false }), hex("a4 6161 01 6162 6178 6174 f5 6175 f4"));
	assert.equal(encoded({}), hex("a0"));
});

test("cbor: every integer head size, both signs, up to 2^53 - 1", () => {
	const cases: [number, string][] = [
		[0, "00"], [23, "17"], [24, "1818"], [255, "18ff"], [256, "190100"], [65535, "19ffff"], [65536, "1a00010000"],
		[4294967295, "1affffffff"], [4294967296, "1b0000000100000000"], [Number.MAX_SAFE_INTEGER, "1b001fffffffffffff"],
		[-1, "20"], [-24, "37"], [-25, "3818"], [-256, "38ff"], [-257, "390100"], [-4294967296, "3affffffff"],
		[-4294967297, "3b0000000100000000"], [-Number.MAX_SAFE_INTEGER, "3b001ffffffffffffe"],
	];
	for (const [value, bytes] of cases) {
		const map = { v: value };
		assert.equal(encoded(map), hex(`a1 6176 ${bytes}`), `${value}`);
		assert.equal(decodeCbor(encoded(map)), map, `${value}`);
	}
});

test("cbor: text and byte strings of every head size round-trip", () => {
	for (const length of [0, 1, 23, 24, 255, 256, 65535, 65536]) {
		const bytes = new Uint8Array(length).map((_, i) => i * 7);
		const map = { text: "ü水𐅑a".repeat(Math.ceil(length / 10)), bytes, [`k${length}`]: -length };
		assert.equal(decodeCbor(encoded(map)), map, `${length}`);
	}
});

test("cbor: the encoder refuses a short buffer and values it cannot encode", () => {
	const request = { c: "token", b: new Uint8Array(10) };
	const bytes = new Uint8Array(cborSize(request) - 1);
	assert.ok(throwsExactly(() => encodeCbor(request, bytes), "cbor buffer too small"));
	assert.ok(throwsExactly(() => encodeCbor({ a: "é" }, new Uint8Array(3)), "cbor buffer too small"), "the text's last byte");
	for (const bad of [1.5, NaN, Infinity, 2 ** 53, -(2 ** 53)]) {
		assert.ok(throwsExactly(() => cborSize({ v: bad }), "bad cbor value"), `${bad}`);
		assert.ok(throwsExactly(() => encodeCbor({ v: bad }, new Uint8Array(64)), "bad cbor value"), `${bad}`);
	}
});

test("cbor: decodes the RFC 8949 appendix A examples it supports", () => {
	const many = Array.from({ length: 25 }, (_, i) => i + 1);
	const cases: [string, CborValue][] = [
		["00", 0], ["01", 1], ["0a", 10], ["17", 23], ["1818", 24], ["1819", 25], ["1864", 100], ["1903e8", 1000],
		["1a000f4240", 1000000], ["1b000000e8d4a51000", 1000000000000], ["20", -1], ["29", -10], ["3863", -100],
		["3903e7", -1000], ["f4", false], ["f5", true], ["f6", null], ["40", new Uint8Array(0)],
		["4401020304", new Uint8Array([1, 2, 3, 4])], ["60", ""], ["6161", "a"], ["6449455446", "IETF"],
		["62225c", "\"\\"], ["62c3bc", "ü"], ["63e6b0b4", "水"], ["64f0908591", "𐅑"], ["80", []], ["83010203", [1, 2, 3]],
		["8301820203820405", [1, [2, 3], [4, 5]]], ["98190102030405060708090a0b0c0d0e0f101112131415161718181819", many],
		["a0", {}], ["a26161016162820203", { a: 1, b: [2, 3] }], ["826161a161626163", ["a", { b: "c" }]],
		["a56161614161626142616361436164614461656145", { a: "A", b: "B", c: "C", d: "D", e: "E" }],
		["9fff", []], ["9f018202039f0405ffff", [1, [2, 3], [4, 5]]], ["9f01820203820405ff", [1, [2, 3], [4, 5]]],
		["83018202039f0405ff", [1, [2, 3], [4, 5]]], ["83019f0203ff820405", [1, [2, 3], [4, 5]]],
		["9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff", many],
		["bf61610161629f0203ffff", { a: 1, b: [2, 3] }], ["826161bf61626163ff", ["a", { b: "c" }]],
		["bf6346756ef563416d7421ff", { Fun: true, Amt: -2 }],
	];
	for (const [bytes, value] of cases)
		assert.equal(decodeCbor(hex(bytes)), value, bytes);
});

test("cbor: refuses the RFC 8949 examples outside the subset: floats, tags, simple values, big numbers", () => {
	const refused = [
		"f7", "f0", "f818", "f8ff", "f90000", "f93c00", "fa47c35000", "fb3ff199999999999a", "f97c00", "fb7ff8000000000000",
		"c074323031332d30332d32315432303a30343a30305a", "c11a514b67b0", "d74401020304", "d818456449455446",
		"1bffffffffffffffff", "3bffffffffffffffff", "c249010000000000000000", "a201020304", "5f42010243030405ff",
		"7f657374726561646d696e67ff",
	];
	for (const bytes of refused)
		assert.ok(throwsExactly(() => decodeCbor(hex(bytes)), "bad cbor"), bytes);
});

test("cbor: byte strings are views into the input, wherever the input sits in its buffer", () => {
	const reply = encoded({ f: 0, i: 7, l: 4, p: new Uint8Array([9, 8, 7, 6]) });
	const frame = new Uint8Array(reply.length + 10);
	frame.set(reply, 5);
	const input = frame.subarray(5, 5 + reply.length);
	const message = decodeCbor(input) as { i: number; p: Uint8Array };
	assert.is(message.i, 7);
	assert.ok(message.p.buffer === frame.buffer, "same buffer");
	assert.is(message.p.byteOffset, 5 + reply.length - 4);
	assert.equal([...message.p], [9, 8, 7, 6]);
	frame[5 + reply.length - 1] = 42;
	assert.is(message.p[3], 42, "a write to the input shows through");
});

test("cbor: \"__proto__\" is an own key, as with JSON.parse, and the prototype stays Object's", () => {
	const value = decodeCbor(hex("a2 695f5f70726f746f5f5f a1 6161 01 6b636f6e7374727563746f72 02")) as { [key: string]: unknown };
	assert.ok(Object.getPrototypeOf(value) === Object.prototype);
	assert.equal(Object.keys(value), ["__proto__", "constructor"]);
	assert.equal(Object.getOwnPropertyDescriptor(value, "__proto__")?.value, { a: 1 });
	assert.is(value.constructor, 2);
	assert.is(({} as { a?: unknown }).a, undefined);
});

test("cbor: malformed input fails with \"bad cbor\"", () => {
	const nested = (depth: number) => "81".repeat(depth) + "00";
	const mixed = (depth: number) => "a16161".repeat(depth - 1) + "8100";
	assert.equal(decodeCbor(hex(nested(8))), [[[[[[[[0]]]]]]]], "8 levels");
	assert.ok(decodeCbor(hex(mixed(8))));
	const bad = [
		"", "ff", "18", "19ff", "1a000000", "1b00000000000000", "4201", "6261", "820102ff" /* trailing */, "0000",
		"5affffffff00", "7b001fffffffffffff61", "9bffffffffffffffff", "9b0000000100000000", "9a0001000001",
		"bb0000000100000000", "ba7fffffff", "a1", "a16161", "8201ff", "9f01", "bf6161", "bf616101616202",
		"1c", "1d", "1e", "3c", "5c", "7f", "5f", "1f", "3f", "df", "ff00",
		"1b0020000000000000", "3b001fffffffffffff", "a2616101616102", "a1a00000", "a14100f5",
		"62c328", "6180", "62c080", "63eda080", "64f4908080", "64f0808080", "63e08080", "61fe", "6261c3", "62e6b0",
		nested(9), mixed(9), nested(100000),
	];
	for (const bytes of bad)
		assert.ok(throwsExactly(() => decodeCbor(hex(bytes)), "bad cbor"), bytes.slice(0, 40));
});

test("cbor: every truncation of a valid reply fails", () => {
	const reply = encoded({ f: 1, i: 300, l: 256, p: new Uint8Array(256).fill(0x5a), c: "ü-token" });
	for (let length = 0; length < reply.length; length++)
		assert.ok(throwsExactly(() => decodeCbor(reply.subarray(0, length)), "bad cbor"), `${length}`);
});

// An independent encoder for any value the decoder returns, to check the decoder on random trees.
function reference(value: CborValue, out: number[]): void {
	const head = (major: number, n: number) => {
		if (n < 24) return void out.push(major | n);
		const bytes = n < 0x100 ? 1 : n < 0x10000 ? 2 : n <= 0xffffffff ? 4 : 8;
		out.push(major | (23 + Math.log2(bytes) + 1));
		for (let i = bytes - 1; i >= 0; i--) out.push(Number((BigInt(n) >> BigInt(8 * i)) & 0xffn));
	};
	if (value === null) out.push(0xf6);
	else if (typeof value === "boolean") out.push(value ? 0xf5 : 0xf4);
	else if (typeof value === "number") value < 0 ? head(0x20, -1 - value) : head(0, value);
	else if (typeof value === "string") {
		const bytes = Buffer.from(value, "utf8");
		head(0x60, bytes.length);
		out.push(...bytes);
	}
	else if (value instanceof Uint8Array) {
		head(0x40, value.length);
		out.push(...value);
	}
	else if (Array.isArray(value)) {
		head(0x80, value.length);
		for (const element of value) reference(element, out);
	}
	else {
		const keys = Object.keys(value);
		head(0xa0, keys.length);
		for (const key of keys) {
			reference(key, out);
			reference(value[key], out);
		}
	}
}

function tree(next: () => number, depth: number): CborValue {
	const kind = Math.floor(next() * (depth < 8 ? 9 : 7));
	const integer = () => Math.floor(next() * 2 ** Math.floor(next() * 54));
	switch (kind) {
	case 0: return integer();
	case 1: return -1 - Math.min(integer(), Number.MAX_SAFE_INTEGER - 1);
	case 2: return String.fromCodePoint(...Array.from({ length: Math.floor(next() * 6) }, () => [0x41, 0xfc, 0x6c34, 0x10151][Math.floor(next() * 4)]));
	case 3: return new Uint8Array(Math.floor(next() * 30)).map(() => next() * 256);
	case 4: return next() < 0.5;
	case 5: return null;
	case 6: return "";
	case 7: return Array.from({ length: Math.floor(next() * 4) }, () => tree(next, depth + 1));
	default: {
		const map: { [key: string]: CborValue } = {};
		for (let i = Math.floor(next() * 4); i > 0; i--) map[`k${Math.floor(next() * 100)}`] = tree(next, depth + 1);
		return map;
	}
	}
}

test("cbor: random trees up to 8 levels decode to what an independent encoder wrote", () => {
	const next = random(8949);
	for (let run = 0; run < 2000; run++) {
		const value = tree(next, 0);
		const out: number[] = [];
		reference(value, out);
		assert.equal(decodeCbor(new Uint8Array(out)), value, `run ${run}`);
	}
});

test("cbor: 10,000 seeded random and mutated buffers decode or fail with \"bad cbor\", and nothing else", () => {
	const next = random(20240601);
	const seeds = [
		encoded({ f: 0, i: 3, l: 16, p: new Uint8Array(16) }),
		hex("9f018202039f0405ffff"), hex("bf6346756ef563416d7421ff"), hex("a26161016162820203"),
	];
	let decoded = 0, refused = 0;
	for (let run = 0; run < 10000; run++) {
		let bytes: Uint8Array;
		if (run % 2) bytes = new Uint8Array(Math.floor(next() * 48)).map(() => next() * 256);
		else {
			bytes = seeds[run % seeds.length].slice();
			for (let flips = 1 + Math.floor(next() * 3); flips > 0; flips--)
				bytes[Math.floor(next() * bytes.length)] ^= 1 << Math.floor(next() * 8);
			bytes = bytes.subarray(0, bytes.length - Math.floor(next() * 2));
		}
		if (throwsExactly(() => decodeCbor(bytes), "bad cbor")) refused++;
		else decoded++;
	}
	assert.is(decoded + refused, 10000);
	assert.ok(decoded > 100 && refused > 100, `decoded ${decoded}, refused ${refused}`);
});

test("base64: the RFC 4648 vectors, padded and unpadded, at an offset", () => {
	const vectors: [string, string][] = [["", ""], ["f", "Zg=="], ["fo", "Zm8="], ["foo", "Zm9v"], ["foob", "Zm9vYg=="], ["fooba", "Zm9vYmE="], ["foobar", "Zm9vYmFy"]];
	for (const [plain, text] of vectors) {
		const bytes = new Uint8Array(Buffer.from(plain));
		assert.is(encodeBase64(bytes, 0, bytes.length), text);
		for (const form of [text, text.replace(/=+$/, "")]) {
			assert.is(decodedBase64Length(form), bytes.length, form);
			const into = new Uint8Array(bytes.length + 4).fill(0xee);
			assert.is(decodeBase64(form, into, 2), bytes.length, form);
			assert.equal([...into], [0xee, 0xee, ...bytes, 0xee, 0xee], form);
		}
	}
	const all = new Uint8Array(256).map((_, i) => i);
	assert.is(encodeBase64(all, 10, 20), Buffer.from(all.subarray(10, 20)).toString("base64"));
});

test("base64: random bytes round-trip and match Node", () => {
	const next = random(4648);
	for (let run = 0; run < 500; run++) {
		const bytes = new Uint8Array(Math.floor(next() * 70)).map(() => next() * 256);
		const text = encodeBase64(bytes, 0, bytes.length);
		assert.is(text, Buffer.from(bytes).toString("base64"));
		const into = new Uint8Array(bytes.length);
		assert.is(decodeBase64(text.replace(/=+$/, ""), into, 0), bytes.length);
		assert.equal(into, bytes);
	}
});

test("base64: bad characters, lengths and padding fail with \"bad base64\"; a short buffer is its own error", () => {
	const bad = ["Z", "Zg=", "Zg===", "Z===", "====", "=", "==", "Zm9v=", "=Zm9", "Zg==Zg==", "Zm 9v", "Zm9v\n", "Zm-v", "Zm_v", "Zm9\u00fc", "Zm9\u0000", "Zm9v Zg"];
	for (const text of bad)
		assert.ok(throwsExactly(() => decodeBase64(text, new Uint8Array(16), 0), "bad base64"), JSON.stringify(text));
	assert.ok(throwsExactly(() => decodedBase64Length("Zm9vY"), "bad base64"));
	assert.ok(throwsExactly(() => decodeBase64("Zm9vYmFy", new Uint8Array(8), 3), "base64 buffer too small"));
	const next = random(64);
	const letters = "AZaz09+/=-_ \n!\u00e9";
	for (let run = 0; run < 3000; run++) {
		const text = Array.from({ length: Math.floor(next() * 12) }, () => letters[Math.floor(next() * letters.length)]).join("");
		const into = new Uint8Array(16);
		if (!throwsExactly(() => decodeBase64(text, into, 0), "bad base64"))
			assert.equal([...into.subarray(0, decodedBase64Length(text))], [...Buffer.from(text, "base64")], text);
	}
});

test("hex: the stream bitmap, least significant bit first, byte 0 first; MD5 both cases", () => {
	// Wanted blocks o+0, o+3 and o+9: byte 0 bits 0 and 3, byte 1 bit 1.
	const bitmap = new Uint8Array([0x09, 0x02, 0xff]);
	assert.is(hexEncode(bitmap, 0, 2), "0902");
	assert.is(hexEncode(bitmap, 1, 3), "02ff");
	assert.is(hexEncode(bitmap, 2, 2), "");
	const into = new Uint8Array(5);
	assert.is(hexDecode("d41D8cd9", into, 1), 4);
	assert.equal([...into], [0, 0xd4, 0x1d, 0x8c, 0xd9]);
	for (const text of ["abc", "0g", "zz", " 0", "0x"])
		assert.ok(throwsExactly(() => hexDecode(text, new Uint8Array(4), 0), "bad hex"), text);
	assert.ok(throwsExactly(() => hexDecode("000000", new Uint8Array(2), 0), "hex buffer too small"));
});

test.run();

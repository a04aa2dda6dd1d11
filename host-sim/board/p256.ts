// ECDSA P-256 verification of a precomputed SHA-256 (what mbedtls_ecdsa_read_signature does for the ESP32
// helper). Node's crypto always hashes the message itself, so the simulated board checks the curve
// equation here, with BigInt, from the standard (FIPS 186-4, SEC 1).

const p = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const n = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
const a = p - 3n;
const b = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
const G: Point = [0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n, 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n];

type Point = [bigint, bigint] | null;

const mod = (x: bigint, m: bigint) => ((x % m) + m) % m;

function inverse(x: bigint, m: bigint): bigint {
	let [r0, r1, s0, s1] = [mod(x, m), m, 1n, 0n];
	while (r1) {
		const q = r0 / r1;
		[r0, r1] = [r1, r0 - q * r1];
		[s0, s1] = [s1, s0 - q * s1];
	}
	return mod(s0, m);
}

function add(P: Point, Q: Point): Point {
	if (!P) return Q;
	if (!Q) return P;
	if (P[0] === Q[0] && mod(P[1] + Q[1], p) === 0n) return null;
	const slope = P[0] === Q[0] && P[1] === Q[1]
		? mod((3n * P[0] * P[0] + a) * inverse(2n * P[1], p), p)
		: mod((Q[1] - P[1]) * inverse(Q[0] - P[0], p), p);
	const x = mod(slope * slope - P[0] - Q[0], p);
	return [x, mod(slope * (P[0] - x) - P[1], p)];
}

function multiply(k: bigint, P: Point): Point {
	let result: Point = null;
	for (let addend = P; k > 0n; k >>= 1n, addend = add(addend, addend))
		if (k & 1n) result = add(result, addend);
	return result;
}

const toBig = (bytes: Uint8Array) => bytes.length ? BigInt(`0x${Buffer.from(bytes).toString("hex")}`) : 0n;

/** Reads a DER ECDSA-Sig-Value: SEQUENCE { INTEGER r, INTEGER s }. */
function readDer(der: Uint8Array): [bigint, bigint] | undefined {
	if (der[0] !== 0x30 || der[1] !== der.length - 2) return undefined;
	const values: bigint[] = [];
	for (let at = 2; values.length < 2;) {
		if (der[at] !== 0x02) return undefined;
		const length = der[at + 1];
		if (!length || at + 2 + length > der.length) return undefined;
		values.push(toBig(der.subarray(at + 2, at + 2 + length)));
		at += 2 + length;
		if (values.length === 2 && at !== der.length) return undefined;
	}
	return [values[0], values[1]];
}

/** `point` is 65 bytes, uncompressed (04 ‖ x ‖ y). */
export function verifyP256(sha256: Uint8Array, der: Uint8Array, point: Uint8Array): boolean {
	const signature = readDer(der);
	if (!signature || point.length !== 65 || point[0] !== 4) return false;
	const [r, s] = signature;
	if (r <= 0n || r >= n || s <= 0n || s >= n) return false;
	const Q: Point = [toBig(point.subarray(1, 33)), toBig(point.subarray(33))];
	if (mod(Q[1] * Q[1] - (Q[0] * Q[0] * Q[0] + a * Q[0] + b), p) !== 0n) return false;
	const w = inverse(s, n);
	const X = add(multiply(mod(toBig(sha256) * w, n), G), multiply(mod(r * w, n), Q));
	return X !== null && mod(X[0], n) === r;
}

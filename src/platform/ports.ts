// The small ports the agent's pure logic talks through. Moddable adapters (this folder) and the host
// simulator both implement them; nothing in src/agent reaches around a port to the platform.

/** The inactive OTA app slot, as raw NOR flash: erase sets a 4 KiB sector to 0xFF, writes only clear bits. */
export interface FlashSlot {
	readonly byteLength: number;
	readonly sectorSize: number;
	/** Bytes one eraseBlock clears (64 KiB on ESP32), a multiple of sectorSize; sectorSize where there is no block erase. */
	readonly blockSize: number;
	erase(sector: number): void;
	/** Erases block `block` (bytes block × blockSize onwards) in one operation, much faster than sector by sector. */
	eraseBlock(block: number): void;
	/** Writes `byteLength` bytes of `buffer` (from its start) at `offset`. */
	write(offset: number, byteLength: number, buffer: ArrayBuffer): void;
	/** Reads into `into` (from its start) `byteLength` bytes at `offset`; no allocation. */
	readInto(offset: number, byteLength: number, into: Uint8Array): void;
}

/** The running OTA app slot, read-only: the base a patch is applied to, and the image whose signature blocks and secure version vouch for the next. */
export interface RunningImage {
	readonly byteLength: number;
	/** Reads into `into` (from its start) `byteLength` bytes at `offset`. */
	readInto(offset: number, byteLength: number, into: Uint8Array): void;
}

export type StoredValue = ArrayBuffer | string | number | boolean;

/** One preference domain. ESP32 limits: key ≤ 15 chars, value ≤ 4000 bytes, int32 only; set is not atomic. */
export interface KeyValueStore {
	get(key: string): StoredValue | undefined;
	set(key: string, value: StoredValue): void;
	delete(key: string): void;
}

/** ESP-IDF image states of an app slot (esp_ota_img_states_t). */
export const ImageState = {
	new: 0,
	pendingVerify: 1,
	valid: 2,
	invalid: 3,
	aborted: 4,
	undefined: -1,
} as const;
export type ImageStateValue = (typeof ImageState)[keyof typeof ImageState];

export interface BootControl {
	/** Index (0 or 1) of the OTA slot the running image was booted from. */
	runningSlot(): number;
	/** State of the running image: pendingVerify on the first boot of a new image with rollback on. */
	runningState(): ImageStateValue;
	/** Version string from the running image's app description. */
	runningVersion(): string;
	/** Makes the inactive slot the boot slot; the platform validates the image and throws "invalid image". */
	setBootToInactive(): void;
	/** Confirms the running image so the bootloader will not roll it back. */
	markValid(): void;
	/** Reboots now (the simulator reboots once the current callback returns). */
	restart(): void;
}

export interface Clock {
	/** Monotonic milliseconds since boot. */
	ticks(): number;
	/** Wall-clock milliseconds since 1970 (UTC), as SNTP set it; small numbers mean it was never set. */
	now(): number;
	setTimeout(callback: () => void, ms: number): unknown;
	clearTimeout(handle: unknown): void;
}

/** Incremental SHA-256. */
export interface Digest {
	reset(): void;
	write(bytes: Uint8Array): void;
	/** Writes the 32-byte digest into `into`. */
	finish(into: Uint8Array): void;
}

/** AES-128 encryption of one 16-byte block under the key it was made with (CCM never decrypts a block). */
export interface BlockCipher {
	/** `block` and `into` may be the same array. */
	encrypt(block: Uint8Array, into: Uint8Array): void;
}

/** What DTLS asks of the platform; HMAC and the PRF are built over sha256 in src/dtls. */
export interface DtlsCrypto {
	aes128(key: Uint8Array): BlockCipher;
	/** A SHA-256 of its own (the handshake hashes while a download may be hashing the image). */
	sha256(): Digest;
	/** Fills `into` with bytes from the platform's cryptographic random source. */
	random(into: Uint8Array): void;
}

/** Warns of a reboot about to come: a file on the simulators, a preference flag or an MQTT command on the device. */
export interface RebootWarning {
	raised(): boolean;
	clear(): void;
}

export type Logger = (message: string) => void;

/** ECDSA P-256 over a SHA-256: the AWS OTA code-signing check. */
export interface SignatureVerifier {
	/** `signature` is DER; the public key is the verifier's own (from config). */
	verify(sha256: Uint8Array, signature: Uint8Array): boolean;
}

/** Public-key checks of a SHA-256 with the key given each time (Secure Boot v2 signature blocks); numbers big-endian. */
export interface KeyVerifier {
	/** ECDSA P-256: `publicKey` 65 bytes (04 ‖ x ‖ y), `signature` DER. */
	p256(sha256: Uint8Array, publicKey: Uint8Array, signature: Uint8Array): boolean;
	/** RSA-3072 PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt: `modulus` and `signature` 384 bytes each. */
	rsaPss3072(sha256: Uint8Array, modulus: Uint8Array, exponent: number, signature: Uint8Array): boolean;
}

export interface Url {
	scheme: string;
	host: string;
	port: number;
	path: string;
}

/** What an HTTP exchange reports, in order: status, headers, body chunks, then complete or error. */
export interface HttpHandler {
	status(code: number): void;
	/** Header names arrive lower-cased. */
	header(name: string, value: string): void;
	headersComplete(): void;
	body(chunk: ArrayBuffer): void;
	complete(): void;
	/** The exchange failed; a message beginning "tls: " names a secure connection's failure (lib/tls-failure.ts). */
	error(message: string): void;
}

export interface HttpExchange {
	close(): void;
}

export interface HttpClient {
	/** Starts a request; `headers` is a flat name, value list. Only http and https URLs reach it. */
	request(method: "GET" | "HEAD", url: Url, headers: string[], handler: HttpHandler): HttpExchange;
}

export interface MqttHandler {
	/** Connected (CONNACK received): subscribe and publish only from here on. */
	ready(): void;
	message(topic: string, payload: ArrayBuffer): void;
	/** The connection is gone (refused, dropped or closed); nothing reconnects by itself. `reason` begins
	 * "tls: " when a secure connection failed its handshake, where the platform can tell. */
	closed(reason?: string): void;
}

export interface MqttConnection {
	/** QoS 0: nothing confirms delivery. Throws "connection closed" when not connected. */
	publish(topic: string, payload: string | ArrayBuffer): void;
	subscribe(topic: string): void;
	close(): void;
}

export interface MqttConnectOptions {
	host: string;
	port: number;
	id: string;
	keepAliveMs: number;
	/** MQTT over TLS with the device's client certificate; `alpn` names the protocol to offer ("" for none). */
	tls?: { alpn: string };
}

export interface MqttConnector {
	connect(options: MqttConnectOptions, handler: MqttHandler): MqttConnection;
}

export interface UdpHandler {
	received(packet: ArrayBuffer, address: string, port: number): void;
	/** A secure socket's session with that peer failed ("dtls: …"): what was sent to it is lost. */
	failed?(address: string, port: number, reason: string): void;
}

export interface UdpSocket {
	/** Sends bytes 0..length of `packet` as one datagram. */
	send(address: string, port: number, packet: Uint8Array, length: number): void;
	close(): void;
}

export interface UdpOpener {
	/** 0: any port. */
	open(localPort: number, handler: UdpHandler): UdpSocket;
	/** Host name → IPv4 address (undefined when unknown); IP literals answer at once. */
	resolve(host: string, answer: (address: string | undefined) => void): void;
}

// Typings for the Moddable modules the agent uses, written from their documented behaviour (the SDK's own
// typings are not on npm, and two of its http constants are wrong: the fragment message is 4, the error -2).
// mcconfig uses this file too (manifest.json's typescript types) in place of the SDK's typings of the same
// modules, so it holds module declarations only: trace and "mc/ffi" are in standalone.d.ts.

declare module "flash" {
	export default class Flash {
		constructor(partition: string);
		readonly byteLength: number;
		readonly blockSize: number;
		erase(sector: number): void;
		read(offset: number, byteLength: number): ArrayBuffer;
		write(offset: number, byteLength: number, buffer: ArrayBuffer): void;
	}
}

declare module "preference" {
	type Value = string | boolean | number | ArrayBuffer;
	const Preference: {
		set(domain: string, key: string, value: Value): void;
		get(domain: string, key: string): Value | undefined;
		delete(domain: string, key: string): void;
		keys(domain: string): string[];
	};
	export default Preference;
}

declare module "timer" {
	export default class Timer {
		private constructor();
		static set(callback: (timer: Timer) => void, interval?: number, repeat?: number): Timer;
		static repeat(callback: (timer: Timer) => void, interval: number): Timer;
		static clear(timer: Timer | undefined): void;
		static delay(ms: number): void;
	}
}

declare module "time" {
	const Time: { readonly ticks: number };
	export default Time;
}

declare module "http" {
	export interface RequestOptions {
		host: string;
		port?: number;
		path: string;
		method?: string;
		headers?: (string | number)[];
		Socket?: unknown;
		secure?: Record<string, unknown>;
	}
	export class Request {
		constructor(options: RequestOptions);
		callback: (this: Request, message: number, value?: any, etc?: any) => void;
		read(type: typeof ArrayBuffer, until?: number): ArrayBuffer;
		read(): number;
		close(): void;
		static readonly status: 1;
		static readonly header: 2;
		static readonly headersComplete: 3;
		static readonly responseFragment: 4;
		static readonly responseComplete: 5;
		static readonly error: -2;
	}
}

declare module "securesocket" {
	type SocketCallback = (message: number, value?: unknown) => void;
	export default class SecureSocket {
		constructor(dictionary: Record<string, unknown>);
		/** Set by its client (http Request, mqtt Client): 1 connected (handshake done), 2 readable, 3 writable, < 0 error. */
		get callback(): SocketCallback | undefined;
		set callback(client: SocketCallback | undefined);
		/** Internals of SDK 8.2.3 read by platform/tls-socket.ts: the TCP socket beneath, and whether the handshake still runs. */
		sock: { callback: SocketCallback | undefined } | undefined;
		handshaking?: boolean;
	}
}

declare module "crypt" {
	export class Digest {
		constructor(type: "SHA256" | "MD5");
		write(message: ArrayBuffer | ArrayBufferView): void;
		close(): ArrayBuffer;
		reset(): void;
	}
	/** One block at a time; "AES" with a 16-byte key is AES-128. */
	export class BlockCipher {
		constructor(cipher: "AES", key: ArrayBuffer);
		encrypt(data: ArrayBuffer, result?: ArrayBuffer): ArrayBuffer;
	}
}

declare module "rng" {
	/** Moddable's random source, module "rng" ($(MODULES)/crypt/etc/rng, which crypt/tls.json includes): `get(n)` gives n bytes. */
	const RNG: { get(n: number): ArrayBuffer };
	export default RNG;
}

declare module "mc/config" {
	const config: Record<string, unknown>;
	export default config;
}

declare module "mqtt" {
	export default class Client {
		constructor(options: { host: string; port?: number; id?: string; user?: string; password?: string; timeout?: number; Socket?: unknown; secure?: Record<string, unknown> });
		onReady: (() => void) | undefined;
		onMessage: ((topic: string, payload: ArrayBuffer) => void) | undefined;
		/** Moddable passes nothing; the simulator passes the reason a secure connection failed. */
		onClose: ((reason?: unknown) => void) | undefined;
		publish(topic: string, data: string | ArrayBuffer, flags?: { retain?: boolean; quality?: number }): void;
		subscribe(topic: string): void;
		unsubscribe(topic: string): void;
		close(): void;
	}
}

declare module "modules" {
	export default class Modules {
		static has(name: string): boolean;
		static importNow(name: string): unknown;
	}
}

declare module "net" {
	const Net: {
		get(what: "IP"): string | undefined;
		/** Asynchronous DNS look-up; `address` is undefined when the name cannot be resolved. */
		resolve(host: string, callback: (name: string, address: string | undefined) => void): void;
	};
	export default Net;
}

declare module "Resource" {
	/** Read-only data built into the app (manifest "resources"), mapped from flash. */
	export default class Resource extends ArrayBuffer {
		constructor(path: string);
		static exists(path: string): boolean;
	}
}

declare module "socket" {
	export class Socket {
		/** UDP: { kind: "UDP", port? } binds a local port (any when absent). */
		constructor(dictionary: { kind?: "TCP" | "UDP"; port?: number; host?: string; address?: string });
		/** UDP data arrives as message 2 with the byte count, the sender's address and port; read() works only inside it. */
		callback: ((this: Socket, message: number, byteLength?: number, address?: string, port?: number) => void) | undefined;
		read(type: typeof ArrayBuffer, until?: number): ArrayBuffer;
		read(): number;
		/** UDP: one datagram of the whole buffer to address:port. */
		write(address: string, port: number, data: ArrayBuffer): void;
		close(): void;
	}
}

// The Moddable "http" Request over the board's sockets: same messages, same order, body streamed in
// fragments that the callback reads with read(ArrayBuffer). With `Socket` (SecureSocket) it is HTTPS; where
// Moddable only traces why a handshake failed, the error message (-2) here carries that reason as its value.
import { call, listen, unlisten } from "./host";
import { secureSpec, type SecureDictionary } from "./secure-spec";

interface RequestOptions {
	host: string;
	port?: number;
	path: string;
	method?: string;
	headers?: (string | number)[];
	Socket?: unknown;
	secure?: SecureDictionary;
}

export class Request {
	static readonly requestFragment = 0;
	static readonly status = 1;
	static readonly header = 2;
	static readonly headersComplete = 3;
	static readonly responseFragment = 4;
	static readonly responseComplete = 5;
	static readonly error = -2;

	callback: ((this: Request, message: number, value?: any, etc?: any) => void) | undefined;
	#id: number;
	#fragment: ArrayBuffer | undefined;

	constructor(options: RequestOptions) {
		this.#id = call("http.request", {
			host: options.host,
			port: options.port ?? 80,
			path: options.path,
			method: options.method ?? "GET",
			headers: (options.headers ?? []).map(String),
			secure: options.Socket ? { serverName: options.host, ...secureSpec(options.secure ?? {}) } : undefined,
		});
		listen(this.#id, (event: { message: number; value?: unknown; etc?: unknown }, data) => {
			if (event.message < 0 || event.message === Request.responseComplete) unlisten(this.#id);
			this.#fragment = data;
			try {
				this.callback?.(event.message, event.value, event.etc);
			}
			finally {
				this.#fragment = undefined;
			}
		});
	}

	read(type?: typeof ArrayBuffer): any {
		const fragment = this.#fragment;
		if (type === undefined) return fragment?.byteLength ?? 0;
		this.#fragment = undefined;
		return fragment ?? new ArrayBuffer(0);
	}

	close(): void {
		unlisten(this.#id);
		call("http.close", this.#id);
	}
}
export default { Request };

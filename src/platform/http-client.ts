// HttpClient over Moddable's streaming "http" Request (modules/network/http, not Node's http): no response
// buffering, one fragment at a time.

import { Request } from "http";
import SecureSocket from "securesocket";
import type { HttpClient, HttpExchange, HttpHandler, Url } from "./ports";

export class ModdableHttpClient implements HttpClient {
	request(method: "GET" | "HEAD", url: Url, headers: string[], handler: HttpHandler): HttpExchange {
		const secure = url.scheme === "https";
		const request = new Request({
			host: url.host,
			port: url.port,
			path: url.path,
			method,
			headers,
			...(secure ? { Socket: SecureSocket, secure: { protocolVersion: 0x303 } } : {}),
		});
		request.callback = function (message, value, etc) {
			switch (message) {
				case Request.status: handler.status(value); break;
				case Request.header: handler.header(value, etc); break;
				case Request.headersComplete: handler.headersComplete(); break;
				case Request.responseFragment: handler.body(this.read(ArrayBuffer)); break;
				case Request.responseComplete: handler.complete(); break;
				default: if (message < 0) handler.error("connection failed"); break;
			}
		};
		return request;
	}
}

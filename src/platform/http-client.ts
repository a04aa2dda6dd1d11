// HttpClient over Moddable's streaming "http" Request (modules/network/http, not Node's http): no response
// buffering, one fragment at a time. https goes through SecureSocket with the device's trust anchor.

import { Request } from "http";
import Timer from "timer";
import type { HttpClient, HttpExchange, HttpHandler, Url } from "./ports";
import { secureOptions, tlsFailureReason } from "./tls-credentials";
import { observedSecureSocket } from "./tls-socket";
import { tlsReasons } from "../lib/tls-failure";

const connectionFailed = "connection failed";

export class ModdableHttpClient implements HttpClient {
	request(method: "GET" | "HEAD", url: Url, headers: string[], handler: HttpHandler): HttpExchange {
		const secure = url.scheme === "https";
		let refused = false;
		let request: Request;
		try {
			request = new Request({
				host: url.host,
				port: url.port,
				path: url.path,
				method,
				headers,
				...(secure ? { Socket: observedSecureSocket(() => refused = true), secure: secureOptions(url.host) } : {}),
			});
		}
		catch (error) {
			// SecureSocket refuses a bad trust anchor in its constructor: say why, as a failed exchange would.
			if (!secure) throw error;
			throw new Error(tlsFailureReason(error, connectionFailed));
		}
		// Closing a request inside its own callback lets the collector free the socket while Moddable's lin
		// socket (socketReadable) still uses it, and the desktop simulator crashes: such a close waits a turn.
		let dispatching = false, closed = false;
		request.callback = function (message, value, etc) {
			if (closed) return;
			dispatching = true;
			try {
				switch (message) {
					case Request.status: handler.status(value); break;
					case Request.header: handler.header(value, etc); break;
					case Request.headersComplete: handler.headersComplete(); break;
					case Request.responseFragment: handler.body(this.read(ArrayBuffer)); break;
					case Request.responseComplete: handler.complete(); break;
					default: if (message < 0) handler.error(!secure ? connectionFailed : refused ? tlsReasons.handshakeFailed : tlsFailureReason(value, connectionFailed)); break;
				}
			}
			finally {
				dispatching = false;
			}
		};
		return {
			close() {
				if (closed) return;
				closed = true;
				if (dispatching) Timer.set(() => request.close(), 0);
				else request.close();
			},
		};
	}
}

// HttpClient over Moddable's streaming "http" Request (modules/network/http, not Node's http): no response
// buffering, one fragment at a time. https goes through SecureSocket with the device's trust anchor.

import { Request } from "http";
import Timer from "timer";
import type { HttpClient, HttpExchange, HttpHandler, Url } from "./ports";
import { secureOptions, tlsFailureReason } from "./tls-credentials";
import { observedSecureSocket } from "./tls-socket";
import { tlsReasons } from "../lib/tls-failure";

const connectionFailed = "connection failed";
/**
	The largest TLS record the device asks a package server for (RFC 6066 max_fragment_length): SecureSocket
	holds a whole record to decrypt it, so 16 KB records (what servers send by default) cost 16 KB of chunks and
	more while a download runs. Servers that ignore the extension still work, with their own record size.
*/
export const maxFragmentBytes = 4096;

/** The SecureSocket options of a package download (Moddable's typings do not name max_fragment_length). */
function downloadOptions(host: string): ReturnType<typeof secureOptions> {
	const options: ReturnType<typeof secureOptions> & { tls_max_fragment_length: number } = { ...secureOptions(host), tls_max_fragment_length: maxFragmentBytes };
	return options;
}

export class ModdableHttpClient implements HttpClient {
	request(method: "GET" | "HEAD", url: Url, headers: string[], handler: HttpHandler): HttpExchange {
		const secure = url.scheme === "https";
		let refused = false;
		let request: Request | undefined;
		// Closing a request inside its own callback lets the collector free the socket while Moddable's lin
		// socket (socketReadable) still uses it, and the desktop simulator crashes: such a close waits a turn.
		let dispatching = false, closed = false, opening = true;
		// The request opens on a turn of its own. SecureSocket's constructor builds the TLS session, which parses
		// the trust anchor (x509, in XS) there and then: opened from inside another exchange's callback (a HEAD's
		// answer that resumes a download, a redirect), that parse would run on top of the callback's frames and
		// overflow a 384-slot JS stack (the esp32c3 and esp32 default).
		const timer = Timer.set(() => {
			opening = false;
			if (closed) return;
			try {
				request = new Request({
					host: url.host,
					port: url.port,
					path: url.path,
					method,
					headers,
					...(secure ? { Socket: observedSecureSocket(() => refused = true), secure: downloadOptions(url.host) } : {}),
				});
			}
			catch (error) {
				closed = true;
				// SecureSocket refuses a bad trust anchor in its constructor: say why, as a failed exchange would.
				handler.error(secure ? tlsFailureReason(error, connectionFailed) : `request failed: ${(error as Error).message}`);
				return;
			}
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
		}, 0);
		return {
			close() {
				if (closed) return;
				closed = true;
				if (opening) return Timer.clear(timer);
				if (!request) return;
				const open = request;
				if (dispatching) Timer.set(() => open.close(), 0);
				else open.close();
			},
		};
	}
}

// Package URI parsing without a URL global (XS has none): scheme, host, port and path are all we need.

import type { Url } from "../platform/ports";

const defaultPorts: { [scheme: string]: number } = { http: 80, https: 443, coap: 5683, coaps: 5684 };

/** The default port of a scheme the agent can download over, or undefined (own properties only). */
export function schemePort(scheme: string): number | undefined {
	return Object.prototype.hasOwnProperty.call(defaultPorts, scheme) ? defaultPorts[scheme] : undefined;
}

/** Whether a scheme is CoAP's, over UDP or DTLS. */
export function isCoap(scheme: string): boolean {
	return scheme === "coap" || scheme === "coaps";
}

/** Spaces and controls: never part of a URI, and a CR or LF would end the request line it is sent in. */
// A fresh RegExp per call, not a module constant: the device preloads module constants into flash, and XS's exec
// on such a RegExp crashed Moddable's simulator when a collection ran while it built the match (an HTTP resume).
function unsafe(text: string): boolean {
	return /[\x00-\x20\x7f]/.test(text);
}

/** The scheme an absolute URI names (lower case), whether or not the rest of it parses; undefined without one. */
export function uriScheme(text: string): string | undefined {
	return /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(text)?.[1].toLowerCase();
}

/** Parses an absolute URI; returns a short reason when it is not one. */
export function parseUrl(text: string): Url | string {
	if (unsafe(text)) return "malformed uri";
	const match = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#\s]*)([^#\s]*)/.exec(text);
	if (!match || match[0].length !== text.replace(/#.*$/, "").length) return "malformed uri";
	const scheme = match[1].toLowerCase();
	let authority = match[2];
	const at = authority.lastIndexOf("@");
	if (at >= 0) authority = authority.slice(at + 1);
	let host = authority, port = schemePort(scheme) ?? 0;
	const hostPort = /^(\[[0-9a-fA-F:.]+\]|[^:]*)(?::(\d{1,5}))?$/.exec(authority);
	if (!hostPort) return "malformed authority";
	host = hostPort[1];
	if (hostPort[2] !== undefined) port = Number(hostPort[2]);
	if (!host) return "missing host";
	if (hostPort[2] !== undefined && (port < 1 || port > 65535)) return "bad port";
	return { scheme, host, port, path: match[3] || "/" };
}

/** Resolves a redirect's Location against the URL it came from. */
export function resolveLocation(base: Url, location: string): Url | string {
	if (unsafe(location)) return "malformed location";
	if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(location)) return parseUrl(location);
	if (location.startsWith("//")) return parseUrl(`${base.scheme}:${location}`);
	if (location.startsWith("/")) return { scheme: base.scheme, host: base.host, port: base.port, path: location };
	const directory = base.path.replace(/[?#].*$/, "").replace(/[^/]*$/, "");
	return { scheme: base.scheme, host: base.host, port: base.port, path: directory + location };
}

export function formatUrl(url: Url): string {
	const standard = schemePort(url.scheme) === url.port;
	return `${url.scheme}://${url.host}${standard ? "" : `:${url.port}`}${url.path}`;
}

/** The value of query parameter `name` in a URI (percent-decoded), or undefined. */
export function queryParameter(uri: string, name: string): string | undefined {
	const query = /\?([^#]*)/.exec(uri)?.[1];
	if (!query) return undefined;
	for (const pair of query.split("&")) {
		const equals = pair.indexOf("=");
		if ((equals < 0 ? pair : pair.slice(0, equals)) !== name) continue;
		try {
			return decodeURIComponent(equals < 0 ? "" : pair.slice(equals + 1).replace(/\+/g, " "));
		}
		catch {
			return undefined;
		}
	}
	return undefined;
}

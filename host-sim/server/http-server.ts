// A static firmware file server that answers resumable downloads the way nginx does (strong ETag, single
// byte ranges, If-Range, If-Match), with switches that make it misbehave for hostile-server tests.
import { createHash } from "node:crypto";
import { open, realpath, type FileHandle } from "node:fs/promises";
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createSecureServer } from "node:https";
import { serverTlsOptions, type ServerTls } from "./server-tls";
import type { AddressInfo } from "node:net";
import { join, sep } from "node:path";

export type ServerFaults = {
	noEtag?: boolean;
	weakEtag?: boolean;
	ignoreRange?: boolean; // always 200 full: Range and If-Range ignored, no Accept-Ranges
	dropAfterBytes?: number; // end the connection once this many body bytes of a file response are sent
	redirect?: { from: string; to: string; count?: number }; // count: redirects left (none = forever)
	statusFor?: Record<string, number>; // path → forced status, e.g. 500, 503
	lieContentRange?: boolean; // 206 carries a Content-Range whose start is off by one
	bytesPerSecond?: number; // a slow link: file bodies are sent in 4 KiB pieces at this rate
};

export type ServerStats = { requests: number; bodyBytes: number };

export type UpdateServer = {
	url: string;
	port: number;
	close(): Promise<void>;
	stats: ServerStats;
	faults: ServerFaults;
};

export type UpdateServerOptions = { dir: string; port?: number; host?: string; faults?: ServerFaults; tls?: ServerTls };

type ServedFile = { handle: FileHandle; size: number; lastModified: string; strongEtag: string };

type RangeDecision =
	| { kind: "full" }
	| { kind: "partial"; start: number; end: number }
	| { kind: "unsatisfiable" };

export async function startUpdateServer(options: UpdateServerOptions): Promise<UpdateServer> {
	const root = await realpath(options.dir);
	const host = options.host ?? "127.0.0.1";
	const stats: ServerStats = { requests: 0, bodyBytes: 0 };
	const faults: ServerFaults = options.faults ?? {};
	const etags = new EtagCache();

	const handler = (request: IncomingMessage, response: ServerResponse) => {
		stats.requests++;
		handleRequest(request, response, { root, faults, stats, etags }).catch(() => response.destroy());
	};
	const server = options.tls ? createSecureServer(serverTlsOptions(options.tls), handler) : createServer(handler);
	await new Promise<void>((done, fail) => {
		server.once("error", fail);
		server.listen(options.port ?? 0, host, () => { server.off("error", fail); done(); });
	});
	const port = (server.address() as AddressInfo).port;
	const urlHost = host.includes(":") ? `[${host}]` : host;

	let closing: Promise<void> | undefined;
	const close = () => (closing ??= new Promise<void>((done) => {
		server.close(() => done());
		// Keep-alive and half-sent responses would otherwise hold close() open.
		server.closeAllConnections();
	}));
	return { url: `${options.tls ? "https" : "http"}://${urlHost}:${port}`, port, close, stats, faults };
}

type Context = { root: string; faults: ServerFaults; stats: ServerStats; etags: EtagCache };

async function handleRequest(request: IncomingMessage, response: ServerResponse, context: Context): Promise<void> {
	const { faults } = context;
	const method = request.method ?? "GET";
	if (method !== "GET" && method !== "HEAD") {
		return sendStatus(request, response, context, 405, { Allow: "GET, HEAD" });
	}
	const path = decodePath(request.url ?? "/");
	if (path === undefined) return sendStatus(request, response, context, 400);

	const redirect = faults.redirect;
	if (redirect && redirect.from === path && (redirect.count === undefined || redirect.count > 0)) {
		if (redirect.count !== undefined) redirect.count--;
		return sendStatus(request, response, context, 302, { Location: redirect.to });
	}
	const forcedStatus = faults.statusFor?.[path];
	if (forcedStatus !== undefined) return sendStatus(request, response, context, forcedStatus);

	if (path.split("/").includes("..")) return sendStatus(request, response, context, 400);
	const file = await openServedFile(context.root, path, context.etags);
	if (!file) return sendStatus(request, response, context, 404);

	let handedOver = false;
	try {
		const etag = faults.noEtag ? undefined : faults.weakEtag ? "W/" + file.strongEtag : file.strongEtag;
		const headers: Record<string, string | number> = {
			"Content-Type": "application/octet-stream",
			"Last-Modified": file.lastModified,
		};
		if (etag) headers.ETag = etag;
		if (!faults.ignoreRange) headers["Accept-Ranges"] = "bytes";

		// RFC 9110 §13.2.2: If-Match first, and it wins over any range problem. Like nginx, the 412 and 416
		// answers carry no validators, so clients can't come to rely on them there.
		const ifMatch = headerText(request, "if-match");
		if (ifMatch !== undefined && !ifMatchPasses(ifMatch, etag)) {
			return sendStatus(request, response, context, 412);
		}

		const decision = faults.ignoreRange ? { kind: "full" as const } : decideRange(request, file, etag);
		if (decision.kind === "unsatisfiable") {
			return sendStatus(request, response, context, 416, { "Content-Range": `bytes */${file.size}` });
		}
		const { start, end } = decision.kind === "partial" ? decision : { start: 0, end: file.size - 1 };
		headers["Content-Length"] = end - start + 1;
		if (decision.kind === "partial") {
			// The lie keeps the length right so only a client that checks the start notices.
			const shownStart = faults.lieContentRange ? (start > 0 ? start - 1 : start + 1) : start;
			headers["Content-Range"] = `bytes ${shownStart}-${shownStart + end - start}/${file.size}`;
		}
		response.writeHead(decision.kind === "partial" ? 206 : 200, headers);
		if (method === "HEAD" || end < start) {
			response.end();
			return;
		}
		handedOver = true;
		streamFileBody(response, file.handle, start, end, context.stats, faults);
	} finally {
		if (!handedOver) await file.handle.close();
	}
}

// Undefined for a path that can't be decoded; the query string plays no part, as in nginx.
function decodePath(rawUrl: string): string | undefined {
	const rawPath = rawUrl.split("?")[0]!;
	try {
		const path = decodeURIComponent(rawPath);
		return path.startsWith("/") && !path.includes("\0") ? path : undefined;
	} catch {
		return undefined;
	}
}

// Only regular files whose real path (symlinks followed) lies inside the root are served.
async function openServedFile(root: string, path: string, etags: EtagCache): Promise<ServedFile | undefined> {
	let handle: FileHandle | undefined;
	try {
		const real = await realpath(join(root, path));
		if (!real.startsWith(root + sep)) return undefined;
		handle = await open(real, "r");
		// Everything below comes from the open descriptor, so a file renamed over meanwhile can't mix versions.
		const status = await handle.stat();
		if (!status.isFile()) {
			await handle.close();
			return undefined;
		}
		const strongEtag = await etags.etagFor(real, handle, status);
		return { handle, size: status.size, lastModified: new Date(status.mtimeMs).toUTCString(), strongEtag };
	} catch {
		await handle?.close().catch(() => {});
		return undefined;
	}
}

// Hashing a whole image per request would be wasteful; a file whose size, times or inode changed is rehashed.
class EtagCache {
	private entries = new Map<string, { signature: string; etag: string }>();

	async etagFor(path: string, handle: FileHandle, status: { size: number; mtimeMs: number; ctimeMs: number; ino: number }): Promise<string> {
		const signature = `${status.size}:${status.mtimeMs}:${status.ctimeMs}:${status.ino}`;
		const cached = this.entries.get(path);
		if (cached?.signature === signature) return cached.etag;
		const hash = createHash("sha256");
		if (status.size > 0) {
			for await (const chunk of handle.createReadStream({ start: 0, end: status.size - 1, autoClose: false })) {
				hash.update(chunk as Buffer);
			}
		}
		const etag = `"${hash.digest("hex").slice(0, 16)}"`;
		this.entries.set(path, { signature, etag });
		return etag;
	}
}

function headerText(request: IncomingMessage, name: string): string | undefined {
	const value = request.headers[name];
	return Array.isArray(value) ? value.join(", ") : value;
}

function ifMatchPasses(header: string, currentEtag: string | undefined): boolean {
	if (header.trim() === "*") return true;
	return parseEtagList(header).some((tag) => strongMatch(tag, currentEtag));
}

// Strong comparison: both tags strong and byte-identical.
function strongMatch(tag: string, currentEtag: string | undefined): boolean {
	return currentEtag !== undefined && !tag.startsWith("W/") && !currentEtag.startsWith("W/") && tag === currentEtag;
}

function parseEtagList(header: string): string[] {
	return header.match(/(?:W\/)?"[^"]*"/g) ?? [];
}

function decideRange(request: IncomingMessage, file: ServedFile, etag: string | undefined): RangeDecision {
	const rangeHeader = headerText(request, "range");
	if (rangeHeader === undefined) return { kind: "full" };
	const ifRange = headerText(request, "if-range");
	if (ifRange !== undefined && !ifRangePasses(ifRange.trim(), etag, file.lastModified)) return { kind: "full" };
	return parseRange(rangeHeader, file.size);
}

// If-Range holds an entity tag (strong comparison) or the exact Last-Modified date.
function ifRangePasses(value: string, etag: string | undefined, lastModified: string): boolean {
	if (value.startsWith('"') || value.startsWith("W/")) return strongMatch(value, etag);
	return value === lastModified;
}

// One range only; a header that doesn't parse, or asks for several ranges, is ignored (full 200).
function parseRange(header: string, size: number): RangeDecision {
	const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
	if (!match) return { kind: "full" };
	const [, first, last] = match as unknown as [string, string, string];
	if (first === "" && last === "") return { kind: "full" };
	if (first === "") {
		const suffixLength = Number(last);
		if (suffixLength === 0 || size === 0) return { kind: "unsatisfiable" };
		return { kind: "partial", start: Math.max(0, size - suffixLength), end: size - 1 };
	}
	const start = Number(first);
	const requestedEnd = last === "" ? Infinity : Number(last);
	if (requestedEnd < start) return { kind: "full" };
	if (start >= size) return { kind: "unsatisfiable" };
	return { kind: "partial", start, end: Math.min(requestedEnd, size - 1) };
}

function streamFileBody(response: ServerResponse, handle: FileHandle, start: number, end: number, stats: ServerStats, faults: ServerFaults): void {
	const { dropAfterBytes, bytesPerSecond } = faults;
	const body = handle.createReadStream({ start, end, autoClose: true, ...(bytesPerSecond ? { highWaterMark: 4096 } : {}) });
	let bytesBeforeDrop = dropAfterBytes ?? Infinity;
	response.once("close", () => body.destroy());
	body.once("error", () => response.destroy());
	if (bytesBeforeDrop <= 0) return cutConnection(response, body);
	body.on("data", (data) => {
		const chunk = data as Buffer;
		if (bytesBeforeDrop <= 0) return;
		const piece = chunk.length > bytesBeforeDrop ? chunk.subarray(0, bytesBeforeDrop) : chunk;
		bytesBeforeDrop -= piece.length;
		stats.bodyBytes += piece.length;
		const flowing = response.write(piece);
		if (bytesBeforeDrop <= 0 && end - start + 1 > dropAfterBytes!) return cutConnection(response, body);
		if (bytesPerSecond) {
			body.pause();
			setTimeout(() => body.resume(), (piece.length / bytesPerSecond) * 1000);
		}
		else if (!flowing) {
			body.pause();
			response.once("drain", () => body.resume());
		}
	});
	body.once("end", () => response.end());
}

// The headers and bytes already written still reach the client; then the connection ends mid-body.
function cutConnection(response: ServerResponse, body: { destroy(): void }): void {
	body.destroy();
	response.flushHeaders();
	const socket = response.socket;
	if (!socket) return void response.destroy();
	socket.once("finish", () => socket.destroy());
	socket.end();
}

function sendStatus(request: IncomingMessage, response: ServerResponse, context: Context, status: number, headers: Record<string, string | number> = {}): void {
	const text = Buffer.from(`${status} ${(STATUS_CODES[status] ?? "unknown").toLowerCase()}\n`);
	response.writeHead(status, { ...headers, "Content-Type": "text/plain", "Content-Length": text.length });
	if (request.method === "HEAD") return void response.end();
	context.stats.bodyBytes += text.length;
	response.end(text);
}

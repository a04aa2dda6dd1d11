/*
	AWS IoT job documents for a firmware update, in either form, checked and normalized into one UpdateJob.
	Stream ids are spliced into MQTT topics and URLs are fetched, so nothing reaches the agent unchecked.

	  afr_ota  {"afr_ota": {"protocols": ["MQTT", "HTTP"], "streamname", "files": [{"filepath", "filesize",
	           "fileid", "update_data_url"?, "sig-sha256-ecdsa"?, …}]}}
	           files[0] is the package; further files are ignored. MQTT wins when it is listed and there is a
	           stream name (or HTTP is not usable); HTTP needs update_data_url. afr_ota carries no version: "".
	  fota     {"command": "fota", "streamId", "fileId", "fileSize", "imageVer", "md5sum"}: always MQTT.

	A rejected document maps to an Update Result:
	  6 unsupported package   not a firmware job we understand: not an object, bad JSON, over 8 KiB, nested
	                          deeper than 16, no afr_ota and no "fota" command, no files; or a package
	                          description that is missing, mistyped or out of range: file size (1..2^31), file
	                          path (≤ 255 bytes), version (1..31 printable ASCII), md5 (32 hex), signature
	                          (base64 of 8..72 bytes), protocols (an array of strings)
	  7 invalid URI           the package's address: stream name, file id (0..255), update_data_url
	  9 unsupported protocol  none of MQTT and HTTP (or HTTP alone when options.http is false), or an
	                          update_data_url scheme other than http and https
	Not enough flash (2) is decided later, against the slot.

	Either form may carry, at its top level, how the device handles the job (each optional; a bad one is 6):
	  "recoveryPolicy"   "save-point" | "restart" | "abort" | "none": what a cut mid-download does
	  "severity"         "critical" | "major" | "minor": a critical update installs at once, whatever the window
	  "maxDeferSeconds"  0..31536000: longest an install may wait for a maintenance window

	Fields are read only when they are the object's own, so "__proto__" and inherited names change nothing.
*/

import { decodeBase64, decodedBase64Length, hexDecode } from "../lib/base64";
import { nestedWithin } from "../lib/json";
import { utf8Length } from "../lib/utf8";
import { Result, type ResultCode } from "./firmware-object";
import type { JobOptions } from "./agent";
import { maxUriBytes, policyOf } from "./record";
import { parseUrl } from "./url";
import { severityNames } from "./job-list";

export type UpdateJob = {
	form: "afr_ota" | "fota";
	protocol: "MQTT" | "HTTP";
	/** The stream to request over MQTT; "" for HTTP. */
	streamId: string;
	fileId: number;
	fileSize: number;
	/** fota's imageVer; "" for afr_ota. */
	version: string;
	/** update_data_url for HTTP; "" for MQTT. */
	url: string;
	/** fota's 16-byte MD5 of the image. */
	md5: Uint8Array | undefined;
	/** afr_ota's DER ECDSA signature, from sig-sha256-ecdsa. */
	signature: Uint8Array | undefined;
	/** afr_ota's filepath; "" for fota. */
	filePath: string;
	/** How the device handles the job: recovery policy, severity, maximum defer period. */
	options: JobOptions;
};

export type JobDocumentError = { error: string; result: ResultCode };

export type JobDocumentOptions = {
	/** Whether HTTP downloads are allowed; true unless false. */
	http?: boolean;
};

export const maxDocumentBytes = 8192;
const maxDepth = 16;
const maxFileSize = 0x80000000;
const maxFilePathBytes = 255;
const minSignatureBytes = 8;
const maxSignatureBytes = 72;

/** AWS IoT thing names; each of these characters is safe in an MQTT topic. */
export function validThingName(name: string): boolean {
	return /^[a-zA-Z0-9:_-]{1,128}$/.test(name);
}

/** Stream ids go into topics: no "/", "+", "#", NUL or space can reach one. */
export function validStreamId(id: unknown): id is string {
	return typeof id === "string" && /^[a-zA-Z0-9_-]{1,128}$/.test(id);
}

function reject(result: ResultCode, error: string): JobDocumentError {
	return { error, result };
}

function own(object: object, key: string): unknown {
	return Object.prototype.hasOwnProperty.call(object, key) ? (object as { [key: string]: unknown })[key] : undefined;
}

function isRecord(value: unknown): value is object {
	return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isInteger(value: unknown, min: number, max: number): value is number {
	return typeof value === "number" && Number.isSafeInteger(value) && value >= min && value <= max;
}

// The DER signature from base64, or undefined when it is not one.
function decodeSignature(value: unknown): Uint8Array | undefined {
	if (typeof value !== "string" || value.length > Math.ceil(maxSignatureBytes / 3) * 4) return undefined;
	try {
		const length = decodedBase64Length(value);
		if (length < minSignatureBytes || length > maxSignatureBytes) return undefined;
		const signature = new Uint8Array(length);
		decodeBase64(value, signature, 0);
		return signature;
	}
	catch {
		return undefined;
	}
}

function parseAfrOta(ota: unknown, httpAllowed: boolean): UpdateJob | JobDocumentError {
	if (!isRecord(ota)) return reject(Result.unsupportedPackage, "bad afr_ota");
	const protocols = own(ota, "protocols");
	if (!Array.isArray(protocols)) return reject(Result.unsupportedPackage, "bad protocols");
	let mqtt = false, http = false;
	for (let i = 0; i < protocols.length; i++) {
		const protocol: unknown = protocols[i];
		if (typeof protocol !== "string") return reject(Result.unsupportedPackage, "bad protocols");
		if (protocol === "MQTT") mqtt = true;
		else if (protocol === "HTTP") http = httpAllowed;
	}
	if (!mqtt && !http) return reject(Result.unsupportedProtocol, "unsupported protocol");
	const files = own(ota, "files");
	if (!Array.isArray(files) || !files.length) return reject(Result.unsupportedPackage, "no files");
	const file: unknown = files[0];
	if (!isRecord(file)) return reject(Result.unsupportedPackage, "bad file");
	const filePath = own(file, "filepath");
	if (typeof filePath !== "string" || utf8Length(filePath) > maxFilePathBytes) return reject(Result.unsupportedPackage, "bad file path");
	const fileSize = own(file, "filesize");
	if (!isInteger(fileSize, 1, maxFileSize)) return reject(Result.unsupportedPackage, "bad file size");
	const fileId = own(file, "fileid");
	if (!isInteger(fileId, 0, 255)) return reject(Result.invalidUri, "bad file id");
	const signatureText = own(file, "sig-sha256-ecdsa");
	const signature = signatureText === undefined ? undefined : decodeSignature(signatureText);
	if (signatureText !== undefined && !signature) return reject(Result.unsupportedPackage, "bad signature");
	const job: UpdateJob = { form: "afr_ota", protocol: "MQTT", streamId: "", fileId, fileSize, version: "", url: "", md5: undefined, signature, filePath, options: {} };
	const streamName = own(ota, "streamname");
	// A stream name that is there but invalid is refused, not passed over for HTTP: it is a hostile document.
	if (mqtt && (!http || (streamName !== undefined && streamName !== ""))) {
		if (!validStreamId(streamName)) return reject(Result.invalidUri, "bad stream name");
		job.streamId = streamName;
		return job;
	}
	const url = own(file, "update_data_url");
	if (typeof url !== "string" || !url) return reject(Result.invalidUri, "missing url");
	if (utf8Length(url) > maxUriBytes) return reject(Result.invalidUri, "url too long");
	const parsed = parseUrl(url);
	if (typeof parsed === "string") return reject(Result.invalidUri, parsed);
	if (parsed.scheme !== "http" && parsed.scheme !== "https") return reject(Result.unsupportedProtocol, `scheme ${parsed.scheme}`);
	job.protocol = "HTTP";
	job.url = url;
	return job;
}

function parseFota(document: object): UpdateJob | JobDocumentError {
	const streamId = own(document, "streamId");
	if (!validStreamId(streamId)) return reject(Result.invalidUri, "bad stream name");
	const fileId = own(document, "fileId");
	if (!isInteger(fileId, 0, 255)) return reject(Result.invalidUri, "bad file id");
	const fileSize = own(document, "fileSize");
	if (!isInteger(fileSize, 1, maxFileSize)) return reject(Result.unsupportedPackage, "bad file size");
	const version = own(document, "imageVer");
	if (typeof version !== "string" || !/^[\x20-\x7e]{1,31}$/.test(version)) return reject(Result.unsupportedPackage, "bad version");
	const md5sum = own(document, "md5sum");
	if (typeof md5sum !== "string" || !/^[0-9a-fA-F]{32}$/.test(md5sum)) return reject(Result.unsupportedPackage, "bad md5");
	const md5 = new Uint8Array(16);
	hexDecode(md5sum, md5, 0);
	return { form: "fota", protocol: "MQTT", streamId, fileId, fileSize, version, url: "", md5, signature: undefined, filePath: "", options: {} };
}

const maxDeferLimit = 31536000;

/** The document's top-level handling fields, or why one is refused. */
function parseJobOptions(document: object): JobOptions | JobDocumentError {
	const options: JobOptions = {};
	const policy = own(document, "recoveryPolicy");
	if (policy !== undefined) {
		options.policy = typeof policy === "string" ? policyOf(policy) : undefined;
		if (options.policy === undefined) return reject(Result.unsupportedPackage, "bad recoveryPolicy");
	}
	const severity = own(document, "severity");
	if (severity !== undefined) {
		if (typeof severity !== "string" || (severityNames as readonly string[]).indexOf(severity) < 0) return reject(Result.unsupportedPackage, "bad severity");
		options.severity = severity as JobOptions["severity"];
	}
	const maxDefer = own(document, "maxDeferSeconds");
	if (maxDefer !== undefined) {
		if (!isInteger(maxDefer, 0, maxDeferLimit)) return reject(Result.unsupportedPackage, "bad maxDeferSeconds");
		options.maxDeferSeconds = maxDefer;
	}
	return options;
}

/**
 * Checks a job document, parsed already or as the JSON text, and returns the update it describes or why it
 * was rejected, with the Update Result to report.
 */
export function parseJobDocument(document: unknown, options: JobDocumentOptions = {}): UpdateJob | JobDocumentError {
	if (typeof document === "string") {
		if (document.length > maxDocumentBytes || utf8Length(document) > maxDocumentBytes) return reject(Result.unsupportedPackage, "document too large");
		if (!nestedWithin(document, maxDepth)) return reject(Result.unsupportedPackage, "document too deep");
		try {
			document = JSON.parse(document);
		}
		catch {
			return reject(Result.unsupportedPackage, "bad json");
		}
	}
	if (!isRecord(document)) return reject(Result.unsupportedPackage, "not a job document");
	const ota = own(document, "afr_ota");
	const job = ota !== undefined ? parseAfrOta(ota, options.http !== false) :
		own(document, "command") === "fota" ? parseFota(document) : reject(Result.unsupportedPackage, "unknown job");
	if ("error" in job) return job;
	const handling = parseJobOptions(document);
	if ("error" in handling) return handling;
	job.options = handling;
	return job;
}

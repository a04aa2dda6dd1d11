// IANA zone names (Europe/Berlin) for the board's POSIX TZ: the device's parser (src/lib/posix-tz.ts) takes only
// POSIX TZ strings, as ESP-IDF's newlib does. A TZif file of version 2 or later ends with the zone's current rule
// as a POSIX TZ string between two newlines (RFC 8536, section 3.3), which is what the board is given.

import * as fs from "node:fs";
import * as path from "node:path";
import { parseTimeZone } from "../src/lib/posix-tz";

const zoneinfo = "/usr/share/zoneinfo";

/** `tz` when it is a POSIX TZ; the POSIX TZ of an IANA zone name; otherwise an Error saying why. */
export function posixTimeZone(tz: string): string {
	const problem = parseTimeZone(tz);
	if (typeof problem !== "string") return tz;
	if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(tz))
		throw new Error(`${tz} is not a POSIX TZ (${problem}); give one such as CET-1CEST,M3.5.0,M10.5.0/3, or an IANA zone name such as Europe/Berlin`);
	const file = path.join(zoneinfo, tz);
	let bytes: Buffer;
	try {
		bytes = fs.readFileSync(file);
	}
	catch {
		throw new Error(`${tz} is not a time zone this computer knows (no ${file}); give a POSIX TZ such as CET-1CEST,M3.5.0,M10.5.0/3`);
	}
	const footer = footerOf(bytes);
	if (footer === undefined || typeof parseTimeZone(footer) === "string")
		throw new Error(`${file} carries no POSIX TZ rule the board can use; give a POSIX TZ such as CET-1CEST,M3.5.0,M10.5.0/3`);
	return footer;
}

/** The POSIX TZ string at the end of a TZif file of version 2 or later, or undefined. */
function footerOf(bytes: Buffer): string | undefined {
	if (bytes.toString("latin1", 0, 4) !== "TZif" || bytes[4] < 0x32 || bytes[bytes.length - 1] !== 0x0a) return undefined;
	const start = bytes.lastIndexOf(0x0a, bytes.length - 2);
	return start < 0 ? undefined : bytes.toString("latin1", start + 1, bytes.length - 1) || undefined;
}

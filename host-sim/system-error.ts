// Node's system errors (ENOENT, EADDRINUSE, …) as the sentences a person reads: what was asked, what is wrong,
// and what to do. Messages without a known code pass through unchanged.

import * as fs from "node:fs";
import { dirname } from "node:path";

type SystemError = Error & { code?: string; syscall?: string; path?: string; address?: string; port?: number };

export function sentence(error: Error): string {
	const { code, syscall, path, address, port } = error as SystemError;
	const where = path ?? "";
	switch (code) {
		// open fails so for a file read (it is missing) and for one created in a missing folder.
		case "ENOENT": return (syscall === "open" || syscall === "mkdir") && !fs.existsSync(dirname(where))
			? `cannot create ${where}: its folder does not exist`
			: `${where} does not exist`;
		case "ENOTDIR": return `${where}: a part of this path is a file, not a folder`;
		case "EEXIST": return syscall === "mkdir" ? `${where} is a file, not a folder` : `${where} exists already`;
		case "EISDIR": return `${where} is a folder, not a file`;
		case "EACCES": return syscall === "listen" ? `port ${port} on ${address} needs more privileges: pick a port above 1023` : `permission denied: ${where}`;
		case "EADDRINUSE": return `port ${port} on ${address} is in use by another program: pick another --port`;
		case "ENOSPC": return `no space left on the disk for ${where}`;
		default: return error.message;
	}
}

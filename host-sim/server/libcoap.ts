// libcoap's example coap-server (Debian libcoap3-bin, over OpenSSL) as a coaps:// peer we did not write: PSK
// only, files put into it as dynamic resources with its own coap-client (Block1), served by Block2 with an ETag.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pickFreePort, portIsFree, startPeer, type PeerProcess } from "./peer-process";

const binaries = ["/usr/bin/coap-server-openssl", "/usr/bin/coap-server"];

/** The coap-server binary, or undefined when libcoap3-bin is not installed. */
export function libcoapServerBinary(): string | undefined {
	return binaries.find((file) => fs.existsSync(file));
}

export interface LibcoapServer {
	/** coaps:// on 127.0.0.1 */
	securePort: number;
	url(resource: string): string;
	/** PUTs bytes as a resource (coap-client over DTLS with the server's key). */
	put(resource: string, bytes: Uint8Array): void;
	close(): Promise<void>;
}

export async function startLibcoapServer(options: { identity: string; key: Uint8Array }): Promise<LibcoapServer> {
	const binary = libcoapServerBinary();
	if (!binary) throw new Error("coap-server not installed (apt-get install libcoap3-bin)");
	// It listens on the port for coap:// and on the next one for coaps://: both must be free.
	let port = await pickFreePort();
	while (!(await portIsFree(port + 1))) port = await pickFreePort();
	const prefix = fs.mkdtempSync(path.join(os.tmpdir(), "xs-ota-libcoap-"));
	const keyArgument = Buffer.from(options.key).toString("latin1");
	const peer: PeerProcess = await startPeer({
		name: "coap-server", binary, prefix, port, otherPorts: [port + 1],
		args: ["-A", "127.0.0.1", "-p", String(port), "-k", keyArgument, "-h", "", "-d", "16", "-v", "3"],
	});
	const client = binary.replace("coap-server", "coap-client");
	return {
		securePort: port + 1,
		url: (resource) => `coaps://127.0.0.1:${port + 1}/${resource}`,
		put(resource, bytes) {
			const file = path.join(prefix, "upload");
			fs.writeFileSync(file, bytes);
			const result = spawnSync(client, ["-m", "put", "-b", "1024", "-f", file, "-k", keyArgument, "-u", options.identity, `coaps://127.0.0.1:${port + 1}/${resource}`], { timeout: 20000 });
			if (result.status !== 0) throw new Error(`coap-client put failed: ${result.stderr}`);
		},
		close: () => peer.close(),
	};
}

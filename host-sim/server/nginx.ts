// Runs the system nginx as a real reference peer for resumable downloads: one foreground process,
// everything it writes kept in a temp prefix so it runs as root without touching /var or /etc.
import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pickFreePort, portIsFree, quote, startPeer } from "./peer-process";

const nginxBinary = "/usr/sbin/nginx";

export type NginxServer = { url: string; port: number; close(): Promise<void> };

/** With tls, nginx serves HTTPS: certPem is sent as it is, so a chain file sends the intermediate too. */
export type NginxTls = { certPem: string; keyPem: string };

export async function startNginx(options: { dir: string; port?: number; tls?: NginxTls }): Promise<NginxServer> {
	if (!existsSync(nginxBinary)) throw new Error("nginx not installed (apt-get install nginx-light)");
	const port = options.port || await pickFreePort();
	// Otherwise whatever holds the port would answer the readiness probe in nginx's place.
	if (options.port && !await portIsFree(port)) throw new Error(`port ${port} is in use`);
	const prefix = mkdtempSync(join(tmpdir(), "xs-ota-nginx-"));
	const configPath = join(prefix, "nginx.conf");
	// Like every other file nginx opens, its certificate and key live in the prefix and go with it.
	if (options.tls) {
		copyFileSync(options.tls.certPem, join(prefix, "cert.pem"));
		copyFileSync(options.tls.keyPem, join(prefix, "key.pem"));
	}
	writeFileSync(configPath, nginxConfig(prefix, resolve(options.dir), port, !!options.tls));
	const { close } = await startPeer({
		name: "nginx",
		binary: nginxBinary,
		args: ["-p", prefix + "/", "-c", configPath, "-e", join(prefix, "error.log")],
		prefix,
		port,
		pidFile: join(prefix, "nginx.pid"),
	});
	return { url: `${options.tls ? "https" : "http"}://127.0.0.1:${port}`, port, close };
}

function nginxConfig(prefix: string, root: string, port: number, tls: boolean): string {
	const at = (name: string) => quote(join(prefix, name));
	return `daemon off;
master_process off;
worker_processes 1;
pid ${at("nginx.pid")};
error_log ${at("error.log")} warn;
events {}
http {
	access_log ${at("access.log")};
	client_body_temp_path ${at("client_body")};
	proxy_temp_path ${at("proxy")};
	fastcgi_temp_path ${at("fastcgi")};
	uwsgi_temp_path ${at("uwsgi")};
	scgi_temp_path ${at("scgi")};
	types {}
	default_type application/octet-stream;
	server {
		listen 127.0.0.1:${port}${tls ? ` ssl;
		ssl_certificate ${at("cert.pem")};
		ssl_certificate_key ${at("key.pem")};` : ";"}
		root ${quote(root)};
		location / { }
	}
}
`;
}

/*
	Running `xs-ota fleet --target aws` output with the real AWS CLI (Debian's awscli) against the AWS stand-in:
	a deployment folder written by the fleet command, an `aws` on PATH that sends every call to the stand-in
	(awscli 2.9 has no AWS_ENDPOINT_URL, so --endpoint-url on every call), dummy credentials, and a child process
	that cannot hang the suite.
*/

import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { fleetCommand } from "../../tools/fleet/command";
import { makeAppImage } from "../../host-sim/image";
import type { AwsStandIn } from "./aws-standin";
import { tempDir } from "./sim";

export const root = fileURLToPath(new URL("../..", import.meta.url));
const examples = `${root}tools/fleet/examples/`;

/** The AWS CLI, if one is installed. */
export const awsCli = ["/usr/bin/aws", ...(process.env.PATH ?? "").split(":").map((dir) => path.join(dir, "aws"))].find((file) => {
	try {
		return fs.statSync(file).isFile() && fs.readFileSync(file, "utf8").includes("awscli");
	}
	catch {
		return false;
	}
});

export interface DeploymentFolder {
	dir: string;
	/** Where deploy.sh and the documents are. */
	out: string;
	bin: string;
}

/** A deployment of rehearsal.ini (job `name`, three things), edited by `edit`, written by the fleet command. */
export async function deploymentFolder(name: string, edit: (ini: string) => string = (ini) => ini): Promise<DeploymentFolder> {
	const dir = tempDir(`fleet-deploy-${name}`);
	const ini = fs.readFileSync(`${examples}rehearsal.ini`, "utf8").replace("jobId = esp32-fw-2_0_0", `jobId = ${name}`)
		.replace("thingList = thingsList.txt", "thingList = things.txt");
	fs.writeFileSync(path.join(dir, "dev.ini"), edit(ini));
	fs.writeFileSync(path.join(dir, "things.txt"), "esp32-a\nesp32-b\nesp32-c\n");
	fs.writeFileSync(path.join(dir, "test.bin"), makeAppImage({ size: 40_000, version: "2.0.0" }));
	const out = path.join(dir, "out");
	const log = console.log;
	console.log = () => {};
	try {
		await fleetCommand({ config: path.join(dir, "dev.ini"), target: "aws", out });
	}
	finally {
		console.log = log;
	}
	const bin = path.join(dir, "bin");
	fs.mkdirSync(bin);
	fs.writeFileSync(path.join(bin, "aws"), `#!/bin/sh\nexec ${awsCli} --endpoint-url "$XS_OTA_STAND_IN" "$@"\n`, { mode: 0o755 });
	fs.writeFileSync(path.join(dir, "config"), "[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n");
	return { dir, out, bin };
}

/** The environment that points the CLI at the stand-in; `caller` is the access key, which the stand-in logs. */
export function environment(where: DeploymentFolder, aws: AwsStandIn, caller: string, extra: { [name: string]: string } = {}): NodeJS.ProcessEnv {
	return {
		PATH: `${where.bin}:/usr/local/bin:/usr/bin:/bin`, HOME: where.dir, XS_OTA_STAND_IN: aws.url,
		AWS_ACCESS_KEY_ID: caller, AWS_SECRET_ACCESS_KEY: "stand-in-secret", AWS_CONFIG_FILE: path.join(where.dir, "config"),
		AWS_SHARED_CREDENTIALS_FILE: path.join(where.dir, "no-credentials"), AWS_MAX_ATTEMPTS: "1", AWS_RETRY_MODE: "standard",
		AWS_PAGER: "", AWS_EC2_METADATA_DISABLED: "true", ...extra,
	};
}

/** deploy.sh's knobs for tests: short polls and pauses. */
export const deployEnv = { POLL: "0.1", PAUSE: "0.1", TRIES: "2", WAIT: "120" };

export function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
	return new Promise((resolve) => {
		const child = spawn(command, args, { cwd, env });
		// A run that hangs fails its test rather than the whole suite; generous, as each AWS CLI call starts a Python on
		// a machine that may be loaded (load average 13 on 2 cores once took a round past 2 minutes).
		const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
		let stdout = "", stderr = "";
		child.stdout.on("data", (chunk) => (stdout += chunk));
		child.stderr.on("data", (chunk) => (stderr += chunk));
		child.on("close", (code) => {
			clearTimeout(timer);
			resolve({ code, stdout, stderr });
		});
	});
}

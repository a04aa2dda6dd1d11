/*
	What a deployment sends to AWS, built from the deployment configuration and the image, for both targets:
	the simulator delivers the same job document to its boards. `xs-ota fleet --target aws` writes the
	documents as the AWS CLI takes them (--cli-input-json) and the script that runs them in order; it sends
	nothing anywhere.
	  job-document.json   the job document: fota {command, streamId, fileId, fileSize, imageVer, md5sum} or
	                      afr_ota {files[0]: filepath, filesize, fileid, sig-sha256-ecdsa}, over the custom document
	  create-stream.json  CreateStream: streamId, description, files [{fileId, s3Location {bucket, key}}], roleArn
	  create-job.json     CreateJob: jobId, targets, document, description, targetSelection, presignedUrlConfig,
	                      jobExecutionsRolloutConfig, abortConfig, timeoutConfig
	  alarm-<name>.json   CloudWatch PutMetricAlarm, one per ALARM_CONFIG alarm
	  deploy.sh           upload the image, create the stream and the alarms, then each round: create the job,
	                      wait for it, stop at the first failed round; clean up as cleanUpCfg says
*/

import { createPrivateKey, createPublicKey, sign } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { jobDocument } from "../server/aws-iot";
import { readAppDescription } from "../image";
import type { AlarmRule } from "./alarms";
import type { DeploymentConfig } from "./deployment-config";
import type { Target } from "./things";

export interface Package {
	bytes: Uint8Array;
	/** The image's file name, as the S3 key and afr_ota's filepath use it. */
	fileName: string;
	/** From the image's app description. */
	version: string;
	form: "fota" | "afr_ota";
	fileId: number;
	/** afr_ota's sig-sha256-ecdsa (base64 DER), when the image is signed. */
	signature: string | undefined;
	/** The custom job document the runtime fields are written over (CUSTOM_JOB_DOCUMENT). */
	custom: Record<string, unknown>;
}

export interface Signing {
	signature: string;
	/** Uncompressed P-256 public key in hex, as the device's config.publicKey takes it. */
	publicKey: string;
}

const maxDocumentBytes = 32768;

/** Signs the image with an EC P-256 private key (PEM), as afr_ota's sig-sha256-ecdsa. */
export function signImage(bytes: Uint8Array, keyPem: string): Signing {
	const key = createPrivateKey(keyPem);
	if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") throw new Error("the signing key must be an EC P-256 private key");
	const jwk = createPublicKey(key).export({ format: "jwk" }) as { x: string; y: string };
	const hex = (base64url: string) => Buffer.from(base64url, "base64url").toString("hex");
	return { signature: sign("sha256", bytes, { key, dsaEncoding: "der" }).toString("base64"), publicKey: `04${hex(jwk.x)}${hex(jwk.y)}` };
}

/** The package's version (from its app description); a file that is no app image is refused. */
export function packageVersion(bytes: Uint8Array, name: string): string {
	const version = readAppDescription(bytes.subarray(0, 512))?.version;
	if (!version) throw new Error(`${name} is not an esp32 app image (no app description)`);
	return version;
}

/** The custom job document of CUSTOM_JOB_DOCUMENT, or an empty one. */
export function readCustomDocument(config: DeploymentConfig): Record<string, unknown> {
	const custom = config.customJobDocument;
	if (!custom) return {};
	if (custom.source === "url") throw new Error(`${config.source}: CUSTOM_JOB_DOCUMENT.jobDocSrcCfg: url documents are not fetched here: save it and use local_file`);
	const file = path.resolve(config.dir, custom.path);
	let parsed: unknown;
	try {
		parsed = JSON.parse(fs.readFileSync(file, "utf8"));
	}
	catch (error) {
		throw new Error(`${config.source}: CUSTOM_JOB_DOCUMENT.jobDocPath: ${file}: ${(error as Error).message.toLowerCase()}`);
	}
	if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error(`${config.source}: CUSTOM_JOB_DOCUMENT.jobDocPath: ${file} is not a json object`);
	return parsed as Record<string, unknown>;
}

/** The job document: the custom one with the runtime fields written over it, as the seed does. */
export function deploymentJobDocument(config: DeploymentConfig, pkg: Package): Record<string, unknown> {
	const fields = jobDocument({ form: pkg.form, image: pkg.bytes, version: pkg.version, signature: pkg.signature, filePath: pkg.fileName }, pkg.bytes, config.streamId, pkg.fileId);
	return { ...pkg.custom, ...(fields as Record<string, unknown>) };
}

/** Each round's job id: the configured one, with the round number appended when there are several rounds. */
export function roundJobId(config: DeploymentConfig, round: number): string {
	return config.rounds > 1 ? `${config.jobId}-${round}` : config.jobId;
}

/** The ids that become MQTT topics and API paths (both targets need them well formed). */
export function checkIds(config: DeploymentConfig): void {
	const longest = roundJobId(config, config.rounds);
	if (!/^[a-zA-Z0-9_-]{1,64}$/.test(longest))
		throw new Error(`${config.source}: DEFAULT.jobId: ${config.jobId} must be 1 to ${64 - (longest.length - config.jobId.length)} letters, digits, "-" or "_"`);
	if (!/^[a-zA-Z0-9_-]{1,128}$/.test(config.streamId)) throw new Error(`${config.source}: DEFAULT.streamId: ${config.streamId} must be 1 to 128 letters, digits, "-" or "_"`);
}

export interface AwsDeployment {
	/** File name → content, in the order written. */
	files: Map<string, string>;
}

/** The documents and script of a deployment on AWS; `image` is the path deploy.sh uploads. */
export function awsDeployment(config: DeploymentConfig, targets: Target[], pkg: Package, image: string): AwsDeployment {
	checkIds(config);
	const where = (key: string) => `${config.source}: ${key}`;
	const required = (key: string, value: string | undefined) => value ?? fail(`${where(`DEFAULT.${key}`)}: missing, and --target aws needs it`);
	const roleArn = required("roleArn", config.roleArn);
	checkRoleArn(roleArn, where("DEFAULT.roleArn"));
	if (config.presignedUrlConfig) checkRoleArn(config.presignedUrlConfig.roleArn, where("PRESIGNED_URL_CONFIG.roleArn"));
	const bucket = required("bucket", config.bucket);
	if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) fail(`${where("DEFAULT.bucket")}: ${bucket} is not an s3 bucket name`);
	const region = required("region", config.region);
	if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) fail(`${where("DEFAULT.region")}: ${region} is not an aws region`);
	for (const alarm of config.alarms)
		for (const topic of alarm.snsTopics)
			if (!/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$/.test(topic)) fail(`${where(`ALARM_CONFIG_${alarm.name}.snsTopics`)}: ${topic} is not an sns topic arn`);

	const document = JSON.stringify(deploymentJobDocument(config, pkg));
	if (Buffer.byteLength(document) > maxDocumentBytes) fail(`${where("CUSTOM_JOB_DOCUMENT.jobDocPath")}: the job document is ${Buffer.byteLength(document)} bytes, over the ${maxDocumentBytes} aws accepts`);
	const account = /^arn:aws[a-z-]*:iam::(\d+):/.exec(roleArn)![1];
	const key = `${pkg.fileId}/${pkg.fileName}`;
	const stream = {
		streamId: config.streamId,
		description: `firmware ${pkg.version} (${pkg.fileName}) for job ${config.jobId}`,
		files: [{ fileId: pkg.fileId, s3Location: { bucket, key } }],
		roleArn,
	};
	const job: Record<string, unknown> = {
		jobId: roundJobId(config, 1),
		targets: targets.map((target) => target.arn ?? `arn:aws:iot:${region}:${account}:thing/${target.name}`),
		document,
		description: `firmware ${pkg.version} over stream ${config.streamId}`,
		targetSelection: config.targetSelection,
	};
	if (config.presignedUrlConfig) job.presignedUrlConfig = config.presignedUrlConfig;
	if (config.rollout) job.jobExecutionsRolloutConfig = config.rollout;
	if (config.abortCriteria) job.abortConfig = { criteriaList: config.abortCriteria };
	if (config.inProgressTimeoutInMinutes !== undefined) job.timeoutConfig = { inProgressTimeoutInMinutes: config.inProgressTimeoutInMinutes };

	const files = new Map<string, string>();
	const json = (value: unknown) => `${JSON.stringify(value, null, "\t")}\n`;
	files.set("job-document.json", json(JSON.parse(document)));
	files.set("create-stream.json", json(stream));
	files.set("create-job.json", json(job));
	for (const alarm of config.alarms) files.set(`alarm-${alarm.name}.json`, json(metricAlarm(alarm, config.jobId)));
	files.set("deploy.sh", deployScript(config, { region, bucket, key, image }));
	return { files };
}

function fail(message: string): never {
	throw new Error(message);
}

function checkRoleArn(arn: string, where: string): void {
	if (arn.length < 20 || arn.length > 2048 || !/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/.test(arn)) fail(`${where}: ${arn} is not an iam role arn`);
}

/** CloudWatch PutMetricAlarm input for one ALARM_CONFIG alarm. */
function metricAlarm(alarm: AlarmRule, jobId: string): Record<string, unknown> {
	const percentile = alarm.stat.startsWith("p");
	return {
		AlarmName: alarm.name,
		AlarmDescription: `${alarm.metricName} of job ${jobId}: ${alarm.stat} ${alarm.type === "upper" ? "above" : "below"} ${alarm.threshold} in ${alarm.datapointsToAlarm} of ${alarm.evaluationPeriods} periods of ${alarm.periodSeconds} s`,
		ActionsEnabled: true,
		AlarmActions: alarm.snsTopics,
		MetricName: alarm.metricName,
		Namespace: alarm.namespace,
		...(percentile ? { ExtendedStatistic: alarm.stat } : { Statistic: alarm.stat }),
		Period: alarm.periodSeconds,
		EvaluationPeriods: alarm.evaluationPeriods,
		DatapointsToAlarm: alarm.datapointsToAlarm,
		Threshold: alarm.threshold,
		ComparisonOperator: alarm.type === "upper" ? "GreaterThanThreshold" : "LessThanThreshold",
		TreatMissingData: "missing",
	};
}

function quote(text: string): string {
	return `'${text.replace(/'/g, `'\\''`)}'`;
}

function deployScript(config: DeploymentConfig, where: { region: string; bucket: string; key: string; image: string }): string {
	const aws = (command: string) => `aws ${command} --region "$REGION"`;
	const jobStatus = (field: string) => `"$(${aws(`iot describe-job --job-id "$job" --query ${field} --output text`)})"`;
	const lines = [
		"#!/bin/sh",
		`# Written by xs-ota fleet --target aws from ${path.basename(config.source)}; nothing has been sent anywhere.`,
		"# Review the documents in this folder, then run this script from it.",
		"set -eu",
		`REGION=${quote(where.region)}`,
		"",
		"# 1. The image, where the stream reads it from.",
		aws(`s3 cp ${quote(where.image)} ${quote(`s3://${where.bucket}/${where.key}`)}`),
		"# 2. The stream.",
		aws("iot create-stream --cli-input-json file://create-stream.json"),
	];
	if (config.alarms.length) {
		lines.push("# 3. The alarms.");
		for (const alarm of config.alarms) lines.push(aws(`cloudwatch put-metric-alarm --cli-input-json ${quote(`file://alarm-${alarm.name}.json`)}`));
	}
	if (config.targetSelection === "CONTINUOUS") {
		lines.push(
			"",
			"# 4. The job. A CONTINUOUS job never completes: follow it with aws iot describe-job, and delete it (then the",
			"#    stream and the alarms) when you are done with it.",
			aws("iot create-job --cli-input-json file://create-job.json"),
			"",
		);
		return lines.join("\n");
	}
	lines.push(
		"",
		`# 4. The job, ${config.rounds === 1 ? "once" : `${config.rounds} rounds`}: wait until it is no longer IN_PROGRESS; a round that does not end`,
		"#    COMPLETED with every execution SUCCEEDED stops the deployment.",
		"failed=0",
		"round=1",
		`while [ "$round" -le ${config.rounds} ]; do`,
		`\tjob=${config.rounds > 1 ? `${quote(`${config.jobId}-`)}"$round"` : quote(config.jobId)}`,
		`\t${aws('iot create-job --cli-input-json file://create-job.json --job-id "$job"')}`,
		`\twhile [ ${jobStatus("job.status")} = IN_PROGRESS ]; do sleep 30; done`,
		`\tstatus=${jobStatus("job.status")}`,
		`\tunsuccessful=$(${aws('iot describe-job --job-id "$job" --query "job.jobProcessDetails.[numberOfFailedThings,numberOfRejectedThings,numberOfTimedOutThings,numberOfCanceledThings]" --output text')} | awk '{ print $1 + $2 + $3 + $4 }')`,
		...(config.cleanUp ? [`\t${aws('iot delete-job --job-id "$job" --force')}`] : []),
		'\tif [ "$status" != COMPLETED ] || [ "$unsuccessful" -ne 0 ]; then',
		'\t\techo "round $round failed: job $status, $unsuccessful executions did not succeed" >&2',
		"\t\tfailed=1",
		"\t\tbreak",
		"\tfi",
		"\tround=$((round + 1))",
		...(config.rounds > 1 && config.defaultDelaySeconds ? [`\t[ "$round" -gt ${config.rounds} ] || sleep ${config.defaultDelaySeconds}`] : []),
		"done",
	);
	if (config.cleanUp) {
		lines.push("", "# 5. Cleanup (cleanUpCfg): the stream and the alarms.", aws(`iot delete-stream --stream-id ${quote(config.streamId)}`));
		if (config.alarms.length) lines.push(aws(`cloudwatch delete-alarms --alarm-names ${config.alarms.map((alarm) => quote(alarm.name)).join(" ")}`));
	}
	lines.push('exit "$failed"', "");
	return lines.join("\n");
}

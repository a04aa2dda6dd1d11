/*
	What a deployment sends to AWS, built from the deployment configuration and the image, for both targets:
	the simulator delivers the same job document to its boards and evaluates the same alarm documents.
	`xs-ota fleet --target aws` writes the documents as the AWS CLI takes them (--cli-input-json), the
	monitor stack and the script that runs them in order; it sends nothing anywhere.
	  job-document.json          the job document: fota {command, streamId, fileId, fileSize, imageVer, md5sum} or
	                             afr_ota {files[0]: filepath, filesize, fileid, sig-sha256-ecdsa}, over the custom one
	  create-stream.json         CreateStream: streamId, description, files [{fileId, s3Location}], roleArn
	  create-job.json            CreateJob: jobId, targets, document, description, targetSelection, presignedUrlConfig,
	                             jobExecutionsRolloutConfig, abortConfig, timeoutConfig
	  alarm-<name>.json          PutMetricAlarm, one per ALARM_CONFIG alarm; downloadTime alarms watch the job's jobId
	  event-configurations.json  UpdateEventConfigurations: JOB_EXECUTION events on (the metric's source)
	  monitor-stack.json         CloudFormation: the metric's pipeline, topic rule, Lambda function and role (download-metric.ts)
	  xs-ota-topic-<topic>.json  CloudFormation: one SNS topic the alarms notify, one stack each (download-metric.ts)
	  deploy.sh                  deploy-script.ts
	Every field is checked against aws-limits.ts, and against the region: ARNs of another partition or region
	are refused, as is a presigned-URL placeholder without PRESIGNED_URL_CONFIG (or the config without one).
	All problems are reported at once, each naming file:line and key.
*/

import { createPrivateKey, createPublicKey, sign } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { jobDocument } from "../../host-sim/server/aws-iot";
import { readAppDescription } from "../../host-sim/image";
import { fieldProblems } from "./aws-limits";
import { deployScript } from "./deploy-script";
import { ConfigErrors, type AlarmRule, type DeploymentConfig } from "./deployment-config";
import { downloadTimeMetric, monitorStackName, monitorTemplate, topicStackName, topicTemplate } from "./download-metric";
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
	if (custom.source === "url") throw new ConfigErrors([`${config.where("CUSTOM_JOB_DOCUMENT.jobDocSrcCfg")}: url documents are not fetched here: save it and use local_file`]);
	const file = path.resolve(config.dir, custom.path);
	let parsed: unknown;
	try {
		parsed = JSON.parse(fs.readFileSync(file, "utf8"));
	}
	catch (error) {
		throw new ConfigErrors([`${config.where("CUSTOM_JOB_DOCUMENT.jobDocPath")}: ${file}: ${(error as Error).message.toLowerCase()}`]);
	}
	if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new ConfigErrors([`${config.where("CUSTOM_JOB_DOCUMENT.jobDocPath")}: ${file} is not a json object`]);
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
	const problems: string[] = [];
	const longest = roundJobId(config, config.rounds);
	if (!/^[a-zA-Z0-9_-]{1,64}$/.test(longest))
		problems.push(`${config.where("DEFAULT.jobId")}: ${config.jobId} must be 1 to ${64 - (longest.length - config.jobId.length)} letters, digits, "-" or "_"`);
	if (!/^[a-zA-Z0-9_-]{1,128}$/.test(config.streamId)) problems.push(`${config.where("DEFAULT.streamId")}: ${config.streamId} must be 1 to 128 letters, digits, "-" or "_"`);
	if (problems.length) throw new ConfigErrors(problems);
}

/** The AWS partition of a region: aws-cn for China, aws-us-gov for GovCloud, aws elsewhere. */
export function partitionOf(region: string): string {
	return region.startsWith("cn-") ? "aws-cn" : region.startsWith("us-gov-") ? "aws-us-gov" : "aws";
}

/** The placeholder AWS IoT replaces with a presigned S3 URL when the job has a presignedUrlConfig. */
const presignedPlaceholder = "${aws:iot:s3-presigned-url:";

export interface AwsDeployment {
	/** File name → content, in the order written. */
	files: Map<string, string>;
	/** The PutMetricAlarm documents, as written (the rehearsal evaluates them). */
	alarms: Record<string, unknown>[];
}

/** The documents and script of a deployment on AWS; `image` is the path deploy.sh uploads. */
export function awsDeployment(config: DeploymentConfig, targets: Target[], pkg: Package, image: string): AwsDeployment {
	checkIds(config);
	const problems: string[] = [];
	const problem = (key: string, text: string) => problems.push(`${config.where(key)}: ${text}`);
	const required = (key: string, value: string | undefined) => {
		if (value === undefined) problem(`DEFAULT.${key}`, "missing, and --target aws needs it");
		return value ?? "";
	};
	const roleArn = required("roleArn", config.roleArn), bucket = required("bucket", config.bucket), region = required("region", config.region);
	if (region && !/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) problem("DEFAULT.region", `${region} is not an aws region`);
	const partition = partitionOf(region);
	const role = /^arn:([a-z-]+):iam::(\d{12}):role\/[\w+=,.@/-]+$/;
	for (const [key, arn] of [["DEFAULT.roleArn", roleArn], ["PRESIGNED_URL_CONFIG.roleArn", config.presignedUrlConfig?.roleArn]] as const) {
		const match = arn ? role.exec(arn) : undefined;
		if (arn && !match) problem(key, `${arn} is not an iam role arn`);
		else if (match && match[1] !== partition) problem(key, `${arn} is in partition ${match[1]}, but ${region} is in ${partition}`);
	}
	const account = role.exec(roleArn)?.[2] ?? "000000000000";
	for (const target of targets) {
		const arn = /^arn:([a-z-]+):iot:([a-z0-9-]+):/.exec(target.arn ?? "");
		if (arn && (arn[1] !== partition || arn[2] !== region))
			problems.push(`${config.where("DEFAULT.thingList")}: line ${target.line}: ${target.arn} is in ${arn[1]} ${arn[2]}, but the deployment is in ${partition} ${region}`);
	}
	for (const alarm of config.alarms)
		for (const topic of alarm.snsTopics) {
			const arn = /^arn:([a-z-]+):sns:([a-z0-9-]+):\d{12}:[\w-]{1,256}$/.exec(topic);
			if (!arn) problem(`ALARM_CONFIG_${alarm.name}.snsTopics`, `${topic} is not an sns topic arn`);
			else if (arn[1] !== partition || arn[2] !== region) problem(`ALARM_CONFIG_${alarm.name}.snsTopics`, `${topic} is in ${arn[1]} ${arn[2]}: an alarm notifies topics of its own region, ${partition} ${region}`);
		}

	const document = JSON.stringify(deploymentJobDocument(config, pkg));
	const documentKey = config.customJobDocument ? "CUSTOM_JOB_DOCUMENT.jobDocPath" : "DEFAULT.binName";
	if (document.includes(presignedPlaceholder) && !config.presignedUrlConfig)
		problem(documentKey, `the job document holds a presigned-url placeholder (${presignedPlaceholder}…}), but usePresignedUrlConfig is False: aws would leave it unreplaced`);
	if (config.presignedUrlConfig && !document.includes(presignedPlaceholder))
		problem("DEFAULT.usePresignedUrlConfig", `is True, but the job document holds no ${presignedPlaceholder}…} placeholder: the presigned url config would do nothing`);
	const key = `${pkg.fileId}/${pkg.fileName}`;
	const stream = {
		streamId: config.streamId,
		description: `firmware ${pkg.version} (${pkg.fileName}) for job ${config.jobId}`,
		files: [{ fileId: pkg.fileId, s3Location: { bucket, key } }],
		roleArn,
	};
	const job: Record<string, unknown> = {
		jobId: roundJobId(config, 1),
		targets: targets.map((target) => target.arn ?? `arn:${partition}:iot:${region}:${account}:${target.kind}/${target.name}`),
		document,
		description: `firmware ${pkg.version} over stream ${config.streamId}`,
		targetSelection: config.targetSelection,
	};
	if (config.presignedUrlConfig) job.presignedUrlConfig = config.presignedUrlConfig;
	if (config.rollout) job.jobExecutionsRolloutConfig = config.rollout;
	if (config.abortCriteria) job.abortConfig = { criteriaList: config.abortCriteria };
	if (config.inProgressTimeoutInMinutes !== undefined) job.timeoutConfig = { inProgressTimeoutInMinutes: config.inProgressTimeoutInMinutes };
	const alarms = config.alarms.map((alarm) => metricAlarm(alarm, roundJobId(config, 1)));
	const events = { eventConfigurations: { JOB_EXECUTION: { Enabled: true } } };

	const check = (api: string, request: Record<string, unknown>, keyOf: (path: string) => string) => {
		for (const found of fieldProblems(api, request)) problem(keyOf(found.path), `${api} ${found.path}: ${found.problem}`);
	};
	check("CreateJob", job, jobFieldKey(config));
	check("CreateStream", stream, (path) => streamFieldKeys[path.replace(/\[\d+\]/g, "[]")] ?? "DEFAULT.streamId");
	config.alarms.forEach((alarm, index) => check("PutMetricAlarm", alarms[index], (path) => `ALARM_CONFIG_${alarm.name}.${alarmFieldKeys[path.replace(/\[\d+\].*$/, "")] ?? "alarmList"}`.replace(/^ALARM_CONFIG_[^.]*\.alarmList$/, "ALARM_CONFIG.alarmList")));
	check("UpdateEventConfigurations", events, () => "DEFAULT.region");
	if (problems.length) throw new ConfigErrors(problems);

	const files = new Map<string, string>();
	const json = (value: unknown) => `${JSON.stringify(value, null, "\t")}\n`;
	files.set("job-document.json", json(JSON.parse(document)));
	files.set("create-stream.json", json(stream));
	files.set("create-job.json", json(job));
	const alarmFiles = alarmFileNames(config.alarms);
	alarms.forEach((alarm, index) => files.set(alarmFiles[index], json(alarm)));
	files.set("event-configurations.json", json(events));
	// The topics of the account the deployment runs in; those of other accounts are theirs to create.
	const ownTopics = [...new Set(config.alarms.flatMap((alarm) => alarm.snsTopics).filter((topic) => topic.split(":")[4] === account).map((topic) => topic.split(":")[5]))];
	const stacks = [
		...ownTopics.map((topic) => ({ name: topicStackName(topic), file: `${topicStackName(topic)}.json`, template: topicTemplate(topic) })),
		{ name: monitorStackName, file: "monitor-stack.json", template: monitorTemplate() },
	];
	for (const stack of stacks) files.set(stack.file, json(stack.template));
	files.set("deploy.sh", deployScript(config, { region, bucket, key, image, alarmFiles, alarmNames: config.alarms.map((alarm) => alarm.name), watchesJob: config.alarms.map(watchesDownloadTime), stacks }, targets.length));
	return { files, alarms };
}

/** The configuration key a CreateJob field comes from. */
function jobFieldKey(config: DeploymentConfig): (path: string) => string {
	return (path) => {
		const criterion = /^abortConfig\.criteriaList\[(\d+)\]\.(\w+)$/.exec(path);
		if (criterion) return `ABORT_CONFIG_TYPE_${config.abortCriteria?.[Number(criterion[1])]?.failureType ?? "ALL"}.${criterion[2]}`;
		const last = path.split(".").pop()!.replace(/\[\d+\]$/, "");
		const section = path.startsWith("presignedUrlConfig") ? "PRESIGNED_URL_CONFIG" : path.includes("rateIncreaseCriteria") ? "INCREASE_CRITERIA"
			: path.includes("exponentialRate") ? "EXP_RATE_CONFIG" : path.startsWith("jobExecutionsRolloutConfig") ? "JOB_EXECUTE_ROLLOUT_CONFIG"
			: path.startsWith("timeoutConfig") ? "TIMEOUT_CONFIG" : path.startsWith("abortConfig") ? "ABORT_CONFIG" : undefined;
		if (section) return `${section}.${last}`;
		return { jobId: "DEFAULT.jobId", targets: "DEFAULT.thingList", document: config.customJobDocument ? "CUSTOM_JOB_DOCUMENT.jobDocPath" : "DEFAULT.binName", targetSelection: "DEFAULT.targetSelection" }[last] ?? "DEFAULT.jobId";
	};
}

const streamFieldKeys: { [path: string]: string } = {
	streamId: "DEFAULT.streamId", roleArn: "DEFAULT.roleArn", "files[].s3Location.bucket": "DEFAULT.bucket", "files[].s3Location.key": "DEFAULT.binName",
};

const alarmFieldKeys: { [field: string]: string } = {
	AlarmActions: "snsTopics", Namespace: "namespace", MetricName: "metricName", Statistic: "stat", ExtendedStatistic: "stat", Period: "period",
	EvaluationPeriods: "evaluationPeriods", DatapointsToAlarm: "datapointsToAlarm", Threshold: "threshold", ComparisonOperator: "alarmType",
};

/** File names for the alarm documents: the alarm's name made safe for a file (any name AWS takes is, then). */
function alarmFileNames(alarms: AlarmRule[]): string[] {
	const taken = new Set<string>();
	return alarms.map((alarm, index) => {
		let name = `alarm-${alarm.name.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 100)}.json`;
		if (taken.has(name)) name = `alarm-${index + 1}-${name.slice(6)}`;
		taken.add(name);
		return name;
	});
}

function watchesDownloadTime(alarm: AlarmRule): boolean {
	return alarm.namespace === downloadTimeMetric.namespace && alarm.metricName === downloadTimeMetric.metricName;
}

/**
	CloudWatch PutMetricAlarm input for one ALARM_CONFIG alarm. One on the downloadTime metric watches the job's
	jobId dimension, as the monitor's function puts it (deploy.sh points it at each round's job in turn).
*/
export function metricAlarm(alarm: AlarmRule, jobId: string): Record<string, unknown> {
	const percentile = alarm.stat.startsWith("p");
	const ours = watchesDownloadTime(alarm);
	return {
		AlarmName: alarm.name,
		AlarmDescription: `${alarm.metricName}${ours ? ` of job ${jobId}` : ""}: ${alarm.stat} ${alarm.type === "upper" ? "above" : "below"} ${alarm.threshold} in ${alarm.datapointsToAlarm} of ${alarm.evaluationPeriods} periods of ${alarm.periodSeconds} s`.slice(0, 1024),
		ActionsEnabled: true,
		AlarmActions: alarm.snsTopics,
		MetricName: alarm.metricName,
		Namespace: alarm.namespace,
		...(ours ? { Dimensions: [{ Name: downloadTimeMetric.dimension, Value: jobId }], Unit: downloadTimeMetric.unit } : {}),
		...(percentile ? { ExtendedStatistic: alarm.stat } : { Statistic: alarm.stat }),
		Period: alarm.periodSeconds,
		EvaluationPeriods: alarm.evaluationPeriods,
		DatapointsToAlarm: alarm.datapointsToAlarm,
		Threshold: alarm.threshold,
		ComparisonOperator: alarm.type === "upper" ? "GreaterThanThreshold" : "LessThanThreshold",
		TreatMissingData: "missing",
	};
}

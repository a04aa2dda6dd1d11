// `xs-ota fleet --target aws`: the documents written for the AWS CLI, checked against the request shapes the AWS
// API reference documents for CreateJob, CreateStream and CloudWatch PutMetricAlarm (every field known, typed and
// in range, the required ones present), the job document against the device's own parser, deploy.sh's order,
// and what AWS would refuse refused here, table-driven, every problem at once with file:line and key.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash, createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { awsDeployment, deploymentJobDocument, packageVersion, readCustomDocument, signImage, type Package } from "../tools/fleet/aws-documents";
import { fleetCommand } from "../tools/fleet/command";
import { ConfigErrors, parseDeploymentConfig, type DeploymentConfig } from "../tools/fleet/deployment-config";
import { parseThingList } from "../tools/fleet/things";
import { makeAppImage } from "../host-sim/image";
import { parseJobDocument, type UpdateJob } from "../src/agent/job-document";
import { tempDir } from "./support/sim";

const examples = fileURLToPath(new URL("../tools/fleet/examples/", import.meta.url));
const rehearsal = fs.readFileSync(`${examples}rehearsal.ini`, "utf8");
const targets = parseThingList(fs.readFileSync(`${examples}thingsList.txt`, "utf8"), "thingsList.txt");
const image = makeAppImage({ size: 100_000, version: "2.0.0" });
const md5 = createHash("md5").update(image).digest("hex");

// The request shapes, from the AWS API reference (API_CreateJob, API_CreateStream, CloudWatch PutMetricAlarm;
// the CLI's --cli-input-json takes the URI parameters jobId and streamId as members too).
type Shape =
	| { type: "string"; min?: number; max?: number; pattern?: RegExp; values?: string[] }
	| { type: "integer" | "number"; min?: number; max?: number }
	| { type: "boolean" }
	| { type: "array"; of: Shape; min?: number; max?: number }
	| { type: "object"; fields: { [name: string]: Shape }; required?: string[] }
	| { type: "map" };

const text = (min?: number, max?: number, pattern?: RegExp): Shape => ({ type: "string", min, max, pattern });
const oneOf = (...values: string[]): Shape => ({ type: "string", values });
const integer = (min?: number, max?: number): Shape => ({ type: "integer", min, max });
const number = (min?: number, max?: number): Shape => ({ type: "number", min, max });
const object = (fields: { [name: string]: Shape }, required: string[] = []): Shape => ({ type: "object", fields, required });
const array = (of: Shape, min?: number, max?: number): Shape => ({ type: "array", of, min, max });
const tags = array(object({ Key: text(1, 128), Value: text(0, 256) }, ["Key"]));

const createJob = object({
	jobId: text(1, 64, /^[a-zA-Z0-9_-]+$/),
	targets: array(text(0, 2048), 1),
	documentSource: text(1, 1350),
	document: text(0, 32768),
	description: text(0, 2028, /^[^\p{C}]*$/u),
	presignedUrlConfig: object({ roleArn: text(20, 2048), expiresInSec: integer(60, 3600) }),
	targetSelection: oneOf("CONTINUOUS", "SNAPSHOT"),
	jobExecutionsRolloutConfig: object({
		exponentialRate: object({
			baseRatePerMinute: integer(1, 1000),
			incrementFactor: number(1.1, 5),
			rateIncreaseCriteria: object({ numberOfNotifiedThings: integer(1), numberOfSucceededThings: integer(1) }),
		}, ["baseRatePerMinute", "incrementFactor", "rateIncreaseCriteria"]),
		maximumPerMinute: integer(1),
	}),
	abortConfig: object({
		criteriaList: array(object({
			action: oneOf("CANCEL"),
			failureType: oneOf("FAILED", "REJECTED", "TIMED_OUT", "ALL"),
			minNumberOfExecutedThings: integer(1),
			thresholdPercentage: number(0, 100),
		}, ["action", "failureType", "minNumberOfExecutedThings", "thresholdPercentage"]), 1),
	}, ["criteriaList"]),
	timeoutConfig: object({ inProgressTimeoutInMinutes: integer(1, 10080) }),
	tags,
	namespaceId: text(1, 64, /^[a-zA-Z0-9_-]+$/),
	jobTemplateArn: text(1, 1600, /^arn:[!-~]+$/),
	jobExecutionsRetryConfig: { type: "map" },
	documentParameters: { type: "map" },
	schedulingConfig: { type: "map" },
	destinationPackageVersions: array(text(1, 1600, /^arn:[!-~]+$/)),
}, ["jobId", "targets"]);

const createStream = object({
	streamId: text(1, 128, /^[a-zA-Z0-9_-]+$/),
	description: text(0, 2028, /^[^\p{C}]*$/u),
	files: array(object({ fileId: integer(0, 255), s3Location: object({ bucket: text(1), key: text(1), version: text() }) }), 1, 50),
	roleArn: text(20, 2048),
	tags,
}, ["streamId", "files", "roleArn"]);

const putMetricAlarm = object({
	AlarmName: text(1, 255), AlarmDescription: text(0, 1024), ActionsEnabled: { type: "boolean" },
	OKActions: array(text(1, 1024), 0, 5), AlarmActions: array(text(1, 1024), 0, 5), InsufficientDataActions: array(text(1, 1024), 0, 5),
	MetricName: text(1, 255), Namespace: text(1, 255, /^[^:].*$/), Statistic: oneOf("SampleCount", "Average", "Sum", "Minimum", "Maximum"),
	ExtendedStatistic: text(0, 255, /^p(\d{1,2}(\.\d+)?|100)$/), Dimensions: array(object({ Name: text(1, 255), Value: text(1, 1024) }, ["Name", "Value"]), 0, 30),
	Period: integer(1), Unit: text(), EvaluationPeriods: integer(1), DatapointsToAlarm: integer(1), Threshold: number(),
	ComparisonOperator: oneOf("GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold", "LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold"),
	TreatMissingData: oneOf("breaching", "notBreaching", "ignore", "missing"), EvaluateLowSampleCountPercentile: text(), Metrics: { type: "map" }, Tags: tags, ThresholdMetricId: text(),
}, ["AlarmName", "EvaluationPeriods", "ComparisonOperator"]);

/** Every way `value` strays from `shape`, as "path: problem". */
function mismatches(value: unknown, shape: Shape, where = "$"): string[] {
	switch (shape.type) {
		case "string": {
			if (typeof value !== "string") return [`${where}: not a string`];
			const problems: string[] = [];
			if (value.length < (shape.min ?? 0) || value.length > (shape.max ?? Infinity)) problems.push(`${where}: length ${value.length}`);
			if (shape.pattern && !shape.pattern.test(value)) problems.push(`${where}: ${value} does not match ${shape.pattern}`);
			if (shape.values && !shape.values.includes(value)) problems.push(`${where}: ${value} is not one of ${shape.values.join(", ")}`);
			return problems;
		}
		case "integer":
		case "number":
			if (typeof value !== "number" || (shape.type === "integer" && !Number.isInteger(value))) return [`${where}: not an ${shape.type}`];
			return value < (shape.min ?? -Infinity) || value > (shape.max ?? Infinity) ? [`${where}: ${value} out of range`] : [];
		case "boolean":
			return typeof value === "boolean" ? [] : [`${where}: not a boolean`];
		case "map":
			return value && typeof value === "object" ? [] : [`${where}: not an object`];
		case "array":
			if (!Array.isArray(value)) return [`${where}: not an array`];
			if (value.length < (shape.min ?? 0) || value.length > (shape.max ?? Infinity)) return [`${where}: ${value.length} items`];
			return value.flatMap((item, index) => mismatches(item, shape.of, `${where}[${index}]`));
		case "object": {
			if (!value || typeof value !== "object" || Array.isArray(value)) return [`${where}: not an object`];
			const entries = Object.entries(value);
			return [
				...(shape.required ?? []).filter((name) => !(name in value)).map((name) => `${where}.${name}: missing`),
				...entries.flatMap(([name, item]) => shape.fields[name] ? mismatches(item, shape.fields[name], `${where}.${name}`) : [`${where}.${name}: not a documented field`]),
			];
		}
	}
}

function packageOf(bytes: Uint8Array, extra: Partial<Package> = {}): Package {
	return { bytes, fileName: "test.bin", version: packageVersion(bytes, "test.bin"), form: "fota", fileId: 7, signature: undefined, custom: {}, ...extra };
}

function deployment(config: DeploymentConfig, pkg: Package = packageOf(image)) {
	const files = awsDeployment(config, targets, pkg, "/fw/test.bin").files;
	return { files, json: (name: string) => JSON.parse(files.get(name)!) };
}

const config = parseDeploymentConfig(rehearsal, `${examples}rehearsal.ini`);

test("create-job.json has the CreateJob request's documented shape and carries every configured part", () => {
	const { json } = deployment(config);
	const job = json("create-job.json");
	assert.equal(mismatches(job, createJob), []);
	assert.is(job.jobId, "esp32-fw-2_0_0");
	assert.equal(job.targets, targets.map((target) => target.arn));
	assert.is(job.targetSelection, "SNAPSHOT");
	assert.is(job.presignedUrlConfig, undefined);
	assert.equal(job.jobExecutionsRolloutConfig, { maximumPerMinute: 100, exponentialRate: { baseRatePerMinute: 4, incrementFactor: 2, rateIncreaseCriteria: { numberOfNotifiedThings: 4, numberOfSucceededThings: 4 } } });
	assert.equal(job.abortConfig.criteriaList.map((criterion: { failureType: string }) => criterion.failureType), ["FAILED", "TIMED_OUT"]);
	assert.equal(job.timeoutConfig, { inProgressTimeoutInMinutes: 30 });
	assert.equal(JSON.parse(job.document), json("job-document.json"));
});

test("a job without the optional parts has none of their fields; bare thing names become thing ARNs", () => {
	const plain = parseDeploymentConfig(rehearsal.replace(/^(use\w+) = True$/gm, "$1 = False"), "dev.ini");
	const job = awsDeployment(plain, parseThingList("esp32-a\nesp32-b\n", "t.txt"), packageOf(image), "/fw/test.bin").files.get("create-job.json")!;
	const parsed = JSON.parse(job);
	assert.equal(mismatches(parsed, createJob), []);
	assert.equal(Object.keys(parsed), ["jobId", "targets", "document", "description", "targetSelection"]);
	assert.equal(parsed.targets, ["arn:aws:iot:us-east-1:123456789012:thing/esp32-a", "arn:aws:iot:us-east-1:123456789012:thing/esp32-b"]);
});

test("create-stream.json has the CreateStream request's documented shape; the file sits at fileId/binName in the bucket", () => {
	const stream = deployment(config).json("create-stream.json");
	assert.equal(mismatches(stream, createStream), []);
	assert.equal(stream.files, [{ fileId: 7, s3Location: { bucket: "iot-ota-deployment-tool", key: "7/test.bin" } }]);
	assert.is(stream.streamId, "esp32-fw-2_0_0-stream");
	assert.is(stream.roleArn, "arn:aws:iam::123456789012:role/ota-stream-role");
});

test("each ALARM_CONFIG alarm becomes a PutMetricAlarm request of the documented shape", () => {
	const alarm = deployment(config).json("alarm-DownloadTimeUpperLimitAlarm.json");
	assert.equal(mismatches(alarm, putMetricAlarm), []);
	assert.equal([alarm.ExtendedStatistic, alarm.Period, alarm.EvaluationPeriods, alarm.DatapointsToAlarm, alarm.Threshold, alarm.ComparisonOperator, alarm.AlarmActions],
		["p99", 60, 5, 3, 600, "GreaterThanThreshold", ["arn:aws:sns:us-east-1:123456789012:email-notification"]]);
	// The metric the monitor stack's function puts: its namespace, name, unit and the job's dimension.
	assert.equal([alarm.Namespace, alarm.MetricName, alarm.Unit, alarm.Dimensions], ["IoT:OTA:JobExecution", "downloadTime", "Seconds", [{ Name: "jobId", Value: "esp32-fw-2_0_0" }]]);
	const lower = parseDeploymentConfig(rehearsal.replace("stat=p99", "stat=Average").replace("alarmType=upper", "alarmType=lower"), "dev.ini");
	const average = deployment(lower).json("alarm-DownloadTimeUpperLimitAlarm.json");
	assert.equal(mismatches(average, putMetricAlarm), []);
	assert.equal([average.Statistic, average.ExtendedStatistic, average.ComparisonOperator], ["Average", undefined, "LessThanThreshold"]);
});

test("the fota job document: size, file id, version and md5sum of the image, as the device parses it", () => {
	const document = deployment(config).json("job-document.json");
	assert.equal(document, { command: "fota", streamId: "esp32-fw-2_0_0-stream", fileId: 7, fileSize: image.length, imageVer: "2.0.0", md5sum: md5 });
	const job = parseJobDocument(document) as UpdateJob;
	assert.equal([job.form, job.streamId, job.fileId, job.fileSize, job.version, Buffer.from(job.md5!).toString("hex")], ["fota", "esp32-fw-2_0_0-stream", 7, image.length, "2.0.0", md5]);
});

test("the afr_ota job document carries the image's ECDSA signature, which verifies and which the device reads", () => {
	const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
	const signing = signImage(image, privateKey.export({ format: "pem", type: "pkcs8" }).toString());
	const document = deployment(config, packageOf(image, { form: "afr_ota", signature: signing.signature })).json("job-document.json");
	const file = document.afr_ota.files[0];
	assert.equal([document.afr_ota.streamname, file.fileid, file.filesize, file.filepath], ["esp32-fw-2_0_0-stream", 7, image.length, "test.bin"]);
	assert.ok(verify("sha256", image, { key: createPublicKey(privateKey), dsaEncoding: "der" }, Buffer.from(file["sig-sha256-ecdsa"], "base64")));
	const jwk = createPublicKey(privateKey).export({ format: "jwk" }) as { x: string; y: string };
	assert.is(signing.publicKey, `04${Buffer.from(jwk.x, "base64url").toString("hex")}${Buffer.from(jwk.y, "base64url").toString("hex")}`);
	assert.equal(Buffer.from((parseJobDocument(document) as UpdateJob).signature!).toString("base64"), signing.signature);
	assert.throws(() => signImage(image, generateKeyPairSync("ed25519").privateKey.export({ format: "pem", type: "pkcs8" }).toString()), /must be an EC P-256 private key/);
});

test("a custom job document keeps its fields; the runtime fields are written over it", () => {
	const dir = tempDir("fleet-custom");
	fs.writeFileSync(path.join(dir, "job_temp.json"), JSON.stringify({ Info1: "123", fileSize: "stale", nested: { a: 1 } }));
	const custom = parseDeploymentConfig(`${rehearsal.replace("useCustomJobDocument = False", "useCustomJobDocument = True")}\n[CUSTOM_JOB_DOCUMENT]\njobDocSrcCfg = local_file\njobDocSrcUrl = None\njobDocPath = job_temp.json\n`, path.join(dir, "dev.ini"));
	const document = deploymentJobDocument(custom, packageOf(image, { custom: readCustomDocument(custom) }));
	assert.equal(document, { Info1: "123", fileSize: image.length, nested: { a: 1 }, command: "fota", streamId: "esp32-fw-2_0_0-stream", fileId: 7, imageVer: "2.0.0", md5sum: md5 });
	const url = parseDeploymentConfig(`${rehearsal.replace("useCustomJobDocument = False", "useCustomJobDocument = True")}\n[CUSTOM_JOB_DOCUMENT]\njobDocSrcCfg = url\njobDocSrcUrl = https://bucket/doc.json\n`, "dev.ini");
	assert.throws(() => readCustomDocument(url), /CUSTOM_JOB_DOCUMENT\.jobDocSrcCfg: url documents are not fetched here/);
	fs.writeFileSync(path.join(dir, "job_temp.json"), "[1]");
	assert.throws(() => readCustomDocument(custom), /CUSTOM_JOB_DOCUMENT\.jobDocPath: .*job_temp\.json is not a json object/);
});

test("deploy.sh: upload, stream, events, topic and monitor stacks, then per round the alarms and the job; valid sh; rounds loop over their job ids", () => {
	const script = deployment(config).files.get("deploy.sh")!;
	const order = ["call s3 cp '/fw/test.bin' 's3://iot-ota-deployment-tool/7/test.bin'", "call iot create-stream", "call iot update-event-configurations",
		"stack 'xs-ota-topic-email-notification' 'xs-ota-topic-email-notification.json' || exit 1", "stack 'xs-ota-download-time' 'monitor-stack.json' || exit 1", "# 4. The job", "call cloudwatch put-metric-alarm --cli-input-json 'file://alarm-DownloadTimeUpperLimitAlarm.json' --dimensions \"Name=jobId,Value=$job\"",
		"call iot create-job", 'finished "$job"', 'remove "$job"', "cleanup || exit 1"];
	const positions = order.map((command) => script.indexOf(command));
	assert.ok(positions.every((position, index) => position >= 0 && (index === 0 || position > positions[index - 1])), positions.join(","));
	assert.ok(script.includes(`JOBS='esp32-fw-2_0_0'`) && script.includes("call iot delete-stream --stream-id \"$STREAM\"") && script.includes("delete-alarms --alarm-names 'DownloadTimeUpperLimitAlarm'"));
	assert.not.ok(/delete-job[^\n]*--force/.test(script.slice(script.indexOf("# 1."))), "outside --abort, no job is force-deleted");
	const dir = tempDir("fleet-sh");
	const stress = deployment(parseDeploymentConfig(rehearsal.replace("rounds = 1", "rounds = 3"), "dev.ini")).files.get("deploy.sh")!;
	assert.ok(stress.includes(`JOBS='esp32-fw-2_0_0-1 esp32-fw-2_0_0-2 esp32-fw-2_0_0-3'`) && stress.includes("sleep 5"));
	const keep = deployment(parseDeploymentConfig(rehearsal.replace("cleanUpCfg = True", "cleanUpCfg = False"), "dev.ini")).files.get("deploy.sh")!;
	assert.not.ok(keep.slice(keep.indexOf("# 1.")).includes("remove \"$job\"") || keep.includes("cleanup || exit 1"));
	for (const [name, each] of [["once.sh", script], ["stress.sh", stress], ["keep.sh", keep]]) {
		fs.writeFileSync(path.join(dir, name), each);
		assert.is(spawnSync("sh", ["-n", path.join(dir, name)]).status, 0, name);
	}
	const continuous = deployment(parseDeploymentConfig(rehearsal.replace("targetSelection = SNAPSHOT", "targetSelection = CONTINUOUS"), "dev.ini")).files.get("deploy.sh")!;
	assert.ok(continuous.includes("never completes") && !continuous.includes('finished "$job"'));
});

test("each topic of the deployment's account gets a stack of its own, named as AWS takes stack names, one name a topic", () => {
	const topics = ["ota", "a_b", "a-b", "x".repeat(256), `${"x".repeat(255)}y`];
	const arns = topics.map((topic) => `arn:aws:sns:us-east-1:123456789012:${topic}`);
	const several = parseDeploymentConfig(rehearsal.replace("snsTopics=arn:aws:sns:us-east-1:123456789012:email-notification", `snsTopics=${arns.join(",")}`), "dev.ini");
	const { files, json } = deployment(several);
	const stacks = [...files.get("deploy.sh")!.matchAll(/^stack '([^']+)' '([^']+)' \|\| exit 1$/gm)].map((match) => ({ name: match[1], file: match[2] }));
	assert.equal(stacks.map((stack) => json(stack.file).Resources.Topic?.Properties.TopicName), [...topics, undefined], "a stack per topic, then the monitor stack");
	assert.ok(stacks.every((stack) => /^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(stack.name)), stacks.map((stack) => stack.name).join("\n"));
	assert.is(new Set(stacks.map((stack) => stack.name)).size, stacks.length);
	assert.equal(stacks.slice(0, 1), [{ name: "xs-ota-topic-ota", file: "xs-ota-topic-ota.json" }]);
	// A topic of another account is that account's to create.
	const foreign = parseDeploymentConfig(rehearsal.replace("sns:us-east-1:123456789012:email-notification", "sns:us-east-1:210987654321:email-notification"), "dev.ini");
	assert.equal([...deployment(foreign).files.keys()].filter((name) => name.startsWith("xs-ota-topic-")), []);
});

/** The problems of a deployment refused as a whole. */
function refusals(config: DeploymentConfig, pkg?: Package, things = targets): string[] {
	try {
		awsDeployment(config, things, pkg ?? packageOf(image), "/fw/test.bin");
	}
	catch (error) {
		assert.instance(error, ConfigErrors, (error as Error).message);
		return (error as ConfigErrors).problems;
	}
	assert.unreachable("accepted");
	return [];
}

const edit = (from: string, to: string) => parseDeploymentConfig(rehearsal.replace(from, to), "dev.ini");

// Each row: a configuration AWS would refuse, and the problem, naming file:line and key.
const refusedTable: [string, () => string[], RegExp][] = [
	["missing bucket", () => refusals(edit("bucket = iot-ota-deployment-tool\n", "")), /^dev\.ini: DEFAULT\.bucket: missing, and --target aws needs it$/],
	["not a region", () => refusals(edit("region = us-east-1", "region = Mars")), /^dev\.ini:\d+: DEFAULT\.region: Mars is not an aws region$/],
	["a role of another partition", () => refusals(edit("region = us-east-1", "region = cn-north-1")), /^dev\.ini:\d+: DEFAULT\.roleArn: arn:aws:iam::123456789012:role\/ota-stream-role is in partition aws, but cn-north-1 is in aws-cn$/],
	["thing ARNs of another region", () => refusals(edit("region = us-east-1", "region = eu-west-1")), /^dev\.ini:\d+: DEFAULT\.thingList: line \d+: arn:aws:iot:us-east-1:\d+:thing\/\S+ is in aws us-east-1, but the deployment is in aws eu-west-1$/],
	["sns topic of another region", () => refusals(edit("sns:us-east-1:123456789012", "sns:us-west-2:123456789012")), /ALARM_CONFIG_DownloadTimeUpperLimitAlarm\.snsTopics: arn:aws:sns:us-west-2:\d+:email-notification is in aws us-west-2: an alarm notifies topics of its own region/],
	["not an sns arn", () => refusals(edit("sns:us-east-1:123456789012:email-notification", "sqs:us-east-1:123456789012:q")), /\.snsTopics: arn:aws:sqs:us-east-1:123456789012:q is not an sns topic arn/],
	["presigned config without placeholder", () => refusals(edit("usePresignedUrlConfig = False", "usePresignedUrlConfig = True")), /^dev\.ini:\d+: DEFAULT\.usePresignedUrlConfig: is True, but the job document holds no \$\{aws:iot:s3-presigned-url:…\} placeholder/],
	["placeholder without presigned config", () => refusals(config, packageOf(image, { custom: { url: "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/b/k}" } })), /DEFAULT\.binName: the job document holds a presigned-url placeholder .* but usePresignedUrlConfig is False/],
	["an alarm name of 300 characters", () => refusals(parseDeploymentConfig(rehearsal.replaceAll("DownloadTimeUpperLimitAlarm", "A".repeat(300)), "dev.ini")), /^dev\.ini:\d+: ALARM_CONFIG\.alarmList: PutMetricAlarm AlarmName: A+… is 300 characters; aws takes 1 to 255$/],
	["a job document over 32768 characters", () => refusals(config, packageOf(image, { custom: { padding: "x".repeat(33000) } })), /DEFAULT\.binName: CreateJob document: .* is \d+ characters; aws takes 0 to 32768/],
];

for (const [name, problemsOf, expected] of refusedTable)
	test(`refused as AWS would: ${name}`, () => {
		const problems = problemsOf();
		assert.ok(problems.some((problem) => expected.test(problem)), problems.join("\n"));
	});

test("a presigned placeholder with PRESIGNED_URL_CONFIG is accepted; partitions follow the region", () => {
	const presigned = edit("usePresignedUrlConfig = False", "usePresignedUrlConfig = True");
	const custom = packageOf(image, { custom: { url: "${aws:iot:s3-presigned-url:https://s3.amazonaws.com/b/k}" } });
	assert.equal(deployment(presigned, custom).json("create-job.json").presignedUrlConfig, { roleArn: "arn:aws:iam::123456789012:role/ota-signing-role", expiresInSec: 3600 });
	const china = parseDeploymentConfig(rehearsal.replace("region = us-east-1", "region = cn-north-1").replaceAll("arn:aws:", "arn:aws-cn:").replaceAll(":us-east-1:", ":cn-north-1:"), "dev.ini");
	const job = JSON.parse(awsDeployment(china, parseThingList("esp32-a\n", "t.txt"), packageOf(image), "/fw/test.bin").files.get("create-job.json")!);
	assert.equal(job.targets, ["arn:aws-cn:iot:cn-north-1:123456789012:thing/esp32-a"]);
	const gov = parseDeploymentConfig(rehearsal.replace("region = us-east-1", "region = us-gov-west-1").replaceAll("arn:aws:", "arn:aws-us-gov:").replaceAll(":us-east-1:", ":us-gov-west-1:"), "dev.ini");
	assert.equal(JSON.parse(awsDeployment(gov, parseThingList("esp32-a\n", "t.txt"), packageOf(image), "/fw/test.bin").files.get("create-job.json")!).targets, ["arn:aws-us-gov:iot:us-gov-west-1:123456789012:thing/esp32-a"]);
});

test("every refusal of one deployment at once, each with file:line and key", () => {
	const problems = refusals(parseDeploymentConfig(rehearsal.replace("region = us-east-1", "region = eu-west-1").replace("usePresignedUrlConfig = False", "usePresignedUrlConfig = True"), "dev.ini"));
	// 12 thing ARNs, the alarm's topic, the presigned config: 14 problems, each located.
	assert.is(problems.length, 14, problems.join("\n"));
	assert.ok(problems.every((problem) => /^dev\.ini:\d+: [A-Z_a-z]+\.\w+: /.test(problem)), problems.join("\n"));
});

test("the seed sample's placeholders are refused before anything is written", () => {
	assert.throws(() => parseDeploymentConfig(fs.readFileSync(`${examples}dev.ini`, "utf8"), "dev.ini"), /dev\.ini:5: DEFAULT\.jobId: <yourJobId> is an unfilled placeholder/);
	assert.throws(() => packageVersion(new Uint8Array(1000), "junk.bin"), /junk\.bin is not an esp32 app image/);
});

test("xs-ota fleet --target aws writes the documents next to each other and nothing else", async () => {
	const dir = tempDir("fleet-aws");
	for (const name of ["rehearsal.ini", "thingsList.txt"]) fs.copyFileSync(`${examples}${name}`, path.join(dir, name));
	fs.writeFileSync(path.join(dir, "test.bin"), image);
	const out = path.join(dir, "out");
	const logged: string[] = [];
	const log = console.log;
	console.log = (line: string) => logged.push(line);
	try {
		await fleetCommand({ config: path.join(dir, "rehearsal.ini"), target: "aws", out, "file-id": "3" });
	}
	finally {
		console.log = log;
	}
	assert.equal(fs.readdirSync(out).sort(), ["alarm-DownloadTimeUpperLimitAlarm.json", "create-job.json", "create-stream.json", "deploy.sh", "event-configurations.json", "job-document.json", "monitor-stack.json", "xs-ota-topic-email-notification.json"]);
	assert.is(fs.statSync(path.join(out, "deploy.sh")).mode & 0o111, 0o111);
	assert.is(JSON.parse(fs.readFileSync(path.join(out, "create-stream.json"), "utf8")).files[0].s3Location.key, "3/test.bin");
	assert.match(logged.join("\n"), /nothing was sent/);
	for (const [flags, message] of [
		[{ config: path.join(dir, "rehearsal.ini"), target: "aws", boards: "5" }, /--boards is not a flag of xs-ota fleet --target aws/],
		[{ config: path.join(dir, "rehearsal.ini"), target: "cloud" }, /--target is sim or aws/],
		[{ config: path.join(dir, "rehearsal.ini"), target: "aws", "signing-key": "k.pem" }, /--signing-key needs --form afr_ota/],
		[{ config: path.join(dir, "rehearsal.ini"), target: "aws", image: "nope.bin" }, /--image: no file .*nope\.bin/],
	] as const) {
		let error: Error | undefined;
		try {
			await fleetCommand({ ...flags, out: path.join(dir, "refused") });
		}
		catch (caught) {
			error = caught as Error;
		}
		assert.match(error?.message ?? "", message);
	}
	assert.not.ok(fs.existsSync(path.join(dir, "refused")), "nothing written when refused");

	// The folder is replaced whole: a stale file goes; a refused run leaves the last good folder as it was.
	fs.writeFileSync(path.join(out, "stale.json"), "{}");
	const slashed = fs.readFileSync(path.join(dir, "rehearsal.ini"), "utf8").replaceAll("DownloadTimeUpperLimitAlarm", "ota/download-time");
	fs.writeFileSync(path.join(dir, "slashed.ini"), slashed);
	console.log = () => {};
	try {
		await fleetCommand({ config: path.join(dir, "slashed.ini"), target: "aws", out });
	}
	finally {
		console.log = log;
	}
	assert.ok(fs.existsSync(path.join(out, "alarm-ota_download-time.json")) && !fs.existsSync(path.join(out, "stale.json")));
	assert.is(JSON.parse(fs.readFileSync(path.join(out, "alarm-ota_download-time.json"), "utf8")).AlarmName, "ota/download-time");
	const before = fs.readdirSync(out).sort();
	fs.writeFileSync(path.join(dir, "long.ini"), slashed.replaceAll("ota/download-time", "x".repeat(300)));
	const refusal = await fleetCommand({ config: path.join(dir, "long.ini"), target: "aws", out }).then(() => undefined, (error: Error) => error.message);
	assert.match(refusal ?? "accepted", /ALARM_CONFIG\.alarmList: PutMetricAlarm AlarmName: x+… is 300 characters; aws takes 1 to 255/);
	assert.equal(fs.readdirSync(out).sort(), before);
	assert.equal(fs.readdirSync(dir).filter((name) => name.startsWith("out.")), [], "no temporary folder left");
});

test.run();

// `xs-ota fleet --target aws`: the documents written for the AWS CLI, checked against the request shapes the AWS
// API reference documents for CreateJob, CreateStream and CloudWatch PutMetricAlarm (every field known, typed and
// in range, the required ones present), the job document against the device's own parser, and deploy.sh's order.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { createHash, createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { awsDeployment, deploymentJobDocument, packageVersion, readCustomDocument, signImage, type Package } from "../host-sim/fleet/aws-documents";
import { fleetCommand } from "../host-sim/fleet/command";
import { parseDeploymentConfig, type DeploymentConfig } from "../host-sim/fleet/deployment-config";
import { parseThingList } from "../host-sim/fleet/things";
import { makeAppImage } from "../host-sim/image";
import { parseJobDocument, type UpdateJob } from "../src/agent/job-document";
import { tempDir } from "./support/sim";

const examples = fileURLToPath(new URL("../host-sim/fleet/examples/", import.meta.url));
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
	assert.equal(job.presignedUrlConfig, { roleArn: "arn:aws:iam::123456789012:role/ota-signing-role", expiresInSec: 3600 });
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

test("deploy.sh runs upload, stream, alarms, then the job, and cleans up; valid sh; several rounds loop with their own job ids", () => {
	const script = deployment(config).files.get("deploy.sh")!;
	const order = ["aws s3 cp '/fw/test.bin' 's3://iot-ota-deployment-tool/7/test.bin'", "aws iot create-stream", "aws cloudwatch put-metric-alarm", "aws iot create-job",
		"aws iot describe-job", "aws iot delete-job", "aws iot delete-stream --stream-id 'esp32-fw-2_0_0-stream'", "aws cloudwatch delete-alarms --alarm-names 'DownloadTimeUpperLimitAlarm'"];
	const positions = order.map((command) => script.indexOf(command));
	assert.ok(positions.every((position, index) => position >= 0 && (index === 0 || position > positions[index - 1])), positions.join(","));
	assert.ok(script.includes(`job='esp32-fw-2_0_0'`));
	const dir = tempDir("fleet-sh");
	const stress = deployment(parseDeploymentConfig(rehearsal.replace("rounds = 1", "rounds = 3"), "dev.ini")).files.get("deploy.sh")!;
	assert.ok(stress.includes(`while [ "$round" -le 3 ]`) && stress.includes(`job='esp32-fw-2_0_0-'"$round"`) && stress.includes("sleep 5"));
	const keep = deployment(parseDeploymentConfig(rehearsal.replace("cleanUpCfg = True", "cleanUpCfg = False"), "dev.ini")).files.get("deploy.sh")!;
	assert.not.ok(keep.includes("delete-"));
	for (const [name, each] of [["once.sh", script], ["stress.sh", stress], ["keep.sh", keep]]) {
		fs.writeFileSync(path.join(dir, name), each);
		assert.is(spawnSync("sh", ["-n", path.join(dir, name)]).status, 0, name);
	}
	const continuous = deployment(parseDeploymentConfig(rehearsal.replace("targetSelection = SNAPSHOT", "targetSelection = CONTINUOUS"), "dev.ini")).files.get("deploy.sh")!;
	assert.ok(continuous.includes("never completes") && !continuous.includes("describe-job --job-id"));
});

test("what AWS would refuse is refused before writing, naming the key: the seed sample's placeholders among them", () => {
	const sample = parseDeploymentConfig(fs.readFileSync(`${examples}dev.ini`, "utf8"), "dev.ini");
	assert.throws(() => deployment(sample), /dev\.ini: DEFAULT\.jobId: <yourJobId> must be 1 to 61 letters/);
	const filled = (text: string) => parseDeploymentConfig(text.replace("<yourJobId>", "job").replace("<yourSteamId>", "stream"), "dev.ini");
	assert.throws(() => deployment(filled(fs.readFileSync(`${examples}dev.ini`, "utf8"))), /DEFAULT\.roleArn: arn:aws:iam::12345678:role\/<your_role> is not an iam role arn/);
	assert.throws(() => deployment(parseDeploymentConfig(rehearsal.replace("bucket = iot-ota-deployment-tool\n", ""), "dev.ini")), /DEFAULT\.bucket: missing, and --target aws needs it/);
	assert.throws(() => deployment(parseDeploymentConfig(rehearsal.replace("region = us-east-1", "region = Mars"), "dev.ini")), /DEFAULT\.region: Mars is not an aws region/);
	assert.throws(() => deployment(parseDeploymentConfig(rehearsal.replace("sns:us-east-1:123456789012", "sns:<region>:<id>"), "dev.ini")), /ALARM_CONFIG_DownloadTimeUpperLimitAlarm\.snsTopics: arn:aws:sns:<region>/);
	assert.throws(() => deployment(parseDeploymentConfig(rehearsal.replace("role/ota-signing-role", "role/"), "dev.ini")), /PRESIGNED_URL_CONFIG\.roleArn/);
	assert.throws(() => deployment(config, packageOf(image, { custom: { padding: "x".repeat(33000) } })), /the job document is \d+ bytes, over the 32768/);
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
	assert.equal(fs.readdirSync(out).sort(), ["alarm-DownloadTimeUpperLimitAlarm.json", "create-job.json", "create-stream.json", "deploy.sh", "job-document.json"]);
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
});

test.run();

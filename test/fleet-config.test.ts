// The deployment configuration of `xs-ota fleet`: INI read as Python's configparser reads it, the seed's sample
// dev.ini as it is, the use* switches, and every unknown or contradictory setting refused with the key named.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { fileURLToPath } from "node:url";
import { parseIni } from "../tools/fleet/ini";
import { ConfigErrors, parseDeploymentConfig } from "../tools/fleet/deployment-config";
import { numberedThings, parseThingList, simulatedThings } from "../tools/fleet/things";

const examples = fileURLToPath(new URL("../tools/fleet/examples/", import.meta.url));
const seedSample = fs.readFileSync(`${examples}dev.ini`, "utf8");
const rehearsal = fs.readFileSync(`${examples}rehearsal.ini`, "utf8");

const minimal = "[DEFAULT]\njobId = job-1\nstreamId = stream-1\n";
/** The seed's sample with its placeholders filled in. */
const filled = seedSample.replace("<your_role>", "ota-role").replace("<yourJobId>", "job").replace("<yourSteamId>", "stream")
	.replace("<your_signing_role>", "signing-role").replaceAll("<region>", "us-east-1").replaceAll("<aws-account-id>", "123456789012");

/** The problems of a configuration refused as a whole. */
function problems(text: string): string[] {
	try {
		parseDeploymentConfig(text, "dev.ini");
	}
	catch (error) {
		assert.instance(error, ConfigErrors);
		return (error as ConfigErrors).problems;
	}
	assert.unreachable("accepted");
	return [];
}

function refused(text: string, pattern: RegExp): void {
	assert.throws(() => parseDeploymentConfig(text, "dev.ini"), pattern);
}

/** The rehearsal configuration with `key = value` lines of `section` replaced (or added). */
function edited(section: string, changes: { [key: string]: string }): string {
	const lines = rehearsal.split("\n");
	const start = lines.indexOf(`[${section}]`);
	let end = lines.findIndex((line, index) => index > start && line.startsWith("["));
	if (end < 0) end = lines.length;
	for (const [key, value] of Object.entries(changes)) {
		const at = lines.findIndex((line, index) => index > start && index < end && line.split("=")[0].trim() === key);
		if (at >= 0) lines[at] = `${key} = ${value}`;
		else lines.splice(start + 1, 0, `${key} = ${value}`);
	}
	return lines.join("\n");
}

test("ini: configparser's syntax: both delimiters, comments, continuation lines, case-insensitive keys, DEFAULT fallback", () => {
	const ini = parseIni([
		"# comment", "; comment too", "[DEFAULT]", "Region: us-east-1", "bucket = b", "", "[S]", "List = a,", "   b,", "", "   c", "empty =", "bucket = mine",
	].join("\n"), "x.ini");
	assert.is(ini.get("DEFAULT", "region")?.value, "us-east-1");
	assert.is(ini.get("S", "REGION")?.value, "us-east-1", "falls back to DEFAULT");
	assert.is(ini.get("S", "bucket")?.value, "mine", "a section's own key wins");
	assert.is(ini.get("S", "list")?.value, "a,\nb,\n\nc", "continuation lines, a blank one kept inside");
	assert.is(ini.get("S", "empty")?.value, "");
	assert.is(ini.get("S", "list")?.line, 8);
	assert.equal(ini.own("S").map((entry) => entry.name), ["List", "empty", "bucket"]);
});

test("ini: %(key)s interpolation and %% as configparser's BasicInterpolation does it", () => {
	const ini = parseIni("[DEFAULT]\nname = fw\n[S]\nid = %(name)s-%(Version)s\nversion = 2\npercent = 10%%\nbad = 5%\nmissing = %(nope)s\n", "x.ini");
	assert.is(ini.get("S", "id")?.value, "fw-2");
	assert.is(ini.get("S", "percent")?.value, "10%");
	assert.throws(() => ini.get("S", "bad"), /x\.ini:7: bad: "%" must be followed/);
	assert.throws(() => ini.get("S", "missing"), /x\.ini:8: missing: %\(nope\)s names no key/);
});

test("ini: duplicates, keys outside sections and lines without a delimiter are errors with the line", () => {
	assert.throws(() => parseIni("[A]\nx = 1\n[A]\n", "x.ini"), /x\.ini:3: duplicate section \[A\]/);
	assert.throws(() => parseIni("[A]\nKey = 1\nkey = 2\n", "x.ini"), /x\.ini:3: duplicate key key in \[A\]/);
	assert.throws(() => parseIni("x = 1\n", "x.ini"), /x\.ini:1: a key before any \[section\]/);
	assert.throws(() => parseIni("[A]\njust words\n", "x.ini"), /x\.ini:2: "just words" has no "=" or ":"/);
});

test("the seed's sample dev.ini: each unfilled placeholder reported at once, with file:line and key; switched-off sections unread", () => {
	assert.equal(problems(seedSample), [
		"dev.ini:4: DEFAULT.roleArn: arn:aws:iam::12345678:role/<your_role> is an unfilled placeholder: put the real value there",
		"dev.ini:5: DEFAULT.jobId: <yourJobId> is an unfilled placeholder: put the real value there",
		"dev.ini:12: DEFAULT.streamId: <yourSteamId> is an unfilled placeholder: put the real value there",
		"dev.ini:85: ALARM_CONFIG_DownloadTimeUpperLimitAlarm.snsTopics: arn:aws:sns:<region>:<aws-account-id>:email-notification,arn:aws:sns:<region>:<aws-account-id>:sms-notification is an unfilled placeholder: put the real value there",
		"dev.ini:96: ALARM_CONFIG_DownloadTimeLowerLimitAlarm.snsTopics: arn:aws:sns:<region>:<aws-account-id>:ota-force-stopper is an unfilled placeholder: put the real value there",
	]);
	const config = parseDeploymentConfig(filled, "dev.ini");
	assert.is(config.thingList, "thingsList.txt");
	assert.is(config.binName, "test.bin");
	assert.is(config.jobId, "job");
	assert.is(config.rounds, 34);
	assert.is(config.cleanUp, true);
	assert.is(config.defaultDelaySeconds, 5);
	assert.is(config.region, "us-east-1");
	assert.is(config.targetSelection, "SNAPSHOT");
	assert.is(config.debug, false);
	assert.is(config.customJobDocument, undefined);
	assert.is(config.presignedUrlConfig, undefined);
	assert.is(config.rollout, undefined);
	assert.is(config.abortCriteria, undefined);
	assert.is(config.inProgressTimeoutInMinutes, undefined);
	assert.equal(config.alarms.map((alarm) => [alarm.name, alarm.stat, alarm.threshold, alarm.type, alarm.evaluationPeriods, alarm.datapointsToAlarm, alarm.snsTopics.length]), [
		["DownloadTimeUpperLimitAlarm", "p99", 3600, "upper", 5, 3, 2],
		["DownloadTimeLowerLimitAlarm", "p99", 100, "lower", 5, 3, 1],
	]);
});

test("the seed's sample with every switch on reads into the AWS shapes", () => {
	const on = filled.replace(/^(use\w+) = False$/gm, "$1 = True");
	const config = parseDeploymentConfig(on, "dev.ini");
	assert.equal(config.customJobDocument, { source: "local_file", path: "job_temp.json" });
	assert.equal(config.presignedUrlConfig, { roleArn: "arn:aws:iam::123456789:role/signing-role", expiresInSec: 3600 });
	assert.equal(config.rollout, {
		maximumPerMinute: 100,
		exponentialRate: { baseRatePerMinute: 100, incrementFactor: 2, rateIncreaseCriteria: { numberOfNotifiedThings: 15, numberOfSucceededThings: 123 } },
	});
	// As the seed documents: with useAllSubsection the other criteria are not used.
	assert.equal(config.abortCriteria, [{ failureType: "ALL", action: "CANCEL", thresholdPercentage: 11, minNumberOfExecutedThings: 1 }]);
	assert.is(config.inProgressTimeoutInMinutes, 60);
	const perType = parseDeploymentConfig(on.replace("useAllSubsection = True", "useAllSubsection = False"), "dev.ini");
	assert.equal(perType.abortCriteria?.map((criterion) => [criterion.failureType, criterion.thresholdPercentage]), [["FAILED", 13], ["REJECTED", 12], ["TIMED_OUT", 14]]);
});

test("defaults of a minimal configuration; configparser's booleans", () => {
	const config = parseDeploymentConfig(`${minimal}cleanUpCfg = yes\ndebug = ON\n`, "dev.ini");
	assert.equal([config.rounds, config.cleanUp, config.debug, config.targetSelection, config.defaultDelaySeconds, config.alarms], [1, true, true, "SNAPSHOT", 0, []]);
	refused(`${minimal}debug = maybe\n`, /dev\.ini:4: DEFAULT\.debug: maybe is not a boolean/);
});

test("unknown sections and keys are refused, naming them", () => {
	refused(`${minimal}jobid2 = x\n`, /dev\.ini:4: DEFAULT\.jobid2: unknown key/);
	refused(`${minimal}[EXP_RATE_CONFIG]\nbaseRate = 5\n`, /EXP_RATE_CONFIG\.baseRate: unknown key \(EXP_RATE_CONFIG takes baseRatePerMinute, incrementFactor, useRateIncreaseCriteria\)/);
	refused(`${minimal}[ROLLOUT]\nx = 1\n`, /dev\.ini:4: \[ROLLOUT\] is not a section/);
	refused(`${minimal}[ABORT_CONFIG_TYPE_SLOW]\nfailureType = FAILED\n`, /\[ABORT_CONFIG_TYPE_SLOW\] is not a section/);
	refused(minimal.replace("jobId = job-1\n", ""), /DEFAULT\.jobId: missing/);
});

test("contradictory settings are refused, naming the key", () => {
	refused(edited("DEFAULT", { rounds: "3", cleanUpCfg: "False" }), /DEFAULT\.cleanUpCfg: must be True when rounds is more than 1/);
	refused(edited("DEFAULT", { rounds: "2", targetSelection: "CONTINUOUS" }), /DEFAULT\.rounds: must be 1 with a CONTINUOUS job/);
	refused(edited("EXP_RATE_CONFIG", { baseRatePerMinute: "200" }), /EXP_RATE_CONFIG\.baseRatePerMinute: 200 exceeds JOB_EXECUTE_ROLLOUT_CONFIG\.maximumPerMinute 100/);
	refused(edited("EXP_RATE_CONFIG", { useRateIncreaseCriteria: "False" }), /EXP_RATE_CONFIG\.useRateIncreaseCriteria: must be True/);
	refused(edited("ABORT_CONFIG_TYPE_FAILED", { failureType: "REJECTED" }), /ABORT_CONFIG_TYPE_FAILED\.failureType: REJECTED contradicts the section, which is for FAILED/);
	refused(edited("ABORT_CONFIG", { useFailedSubsection: "False", useTimedOutSubsection: "False" }), /ABORT_CONFIG\.useAllSubsection: is False, and so are the other 3 switches/);
	refused(edited("DEFAULT", { fileChunkSize: "4096" }), /DEFAULT\.fileChunckSize: repeats fileChunkSize/);
	refused(rehearsal.replace(/\[INCREASE_CRITERIA\]\nnumberOfNotifiedThings = 4\nnumberOfSucceededThings = 4\n/, "[INCREASE_CRITERIA]\n"), /INCREASE_CRITERIA\.numberOfNotifiedThings: missing, and so is numberOfSucceededThings/);
	refused(rehearsal.replace("[TIMEOUT_CONFIG]\ninProgressTimeoutInMinutes = 30\n", ""), /DEFAULT\.useTimeoutConfig: is True but there is no \[TIMEOUT_CONFIG\] section/);
	refused(edited("ALARM_CONFIG", { alarmList: "DownloadTimeUpperLimitAlarm, Missing" }), /ALARM_CONFIG\.alarmList: names Missing but there is no \[ALARM_CONFIG_Missing\] section/);
});

test("values outside what AWS and CloudWatch accept are refused, naming the key", () => {
	refused(edited("EXP_RATE_CONFIG", { incrementFactor: "1.55" }), /EXP_RATE_CONFIG\.incrementFactor: 1\.55 must be from 1\.1 to 5 with at most 1 decimal/);
	refused(edited("EXP_RATE_CONFIG", { incrementFactor: "1.0" }), /EXP_RATE_CONFIG\.incrementFactor: 1\.0 must be from 1\.1/);
	refused(edited("JOB_EXECUTE_ROLLOUT_CONFIG", { maximumPerMinute: "1001" }), /JOB_EXECUTE_ROLLOUT_CONFIG\.maximumPerMinute: 1001 must be a whole number from 1 to 1000/);
	refused(edited("ABORT_CONFIG_TYPE_FAILED", { thresholdPercentage: "10.999" }), /ABORT_CONFIG_TYPE_FAILED\.thresholdPercentage: 10\.999 must be from 0 to 100 with at most 2 decimals/);
	refused(edited("ABORT_CONFIG_TYPE_FAILED", { minNumberOfExecutedThings: "0" }), /minNumberOfExecutedThings: 0 must be a whole number from 1/);
	refused(edited("TIMEOUT_CONFIG", { inProgressTimeoutInMinutes: "10081" }), /TIMEOUT_CONFIG\.inProgressTimeoutInMinutes: 10081 must be a whole number from 1 to 10080/);
	refused(edited("PRESIGNED_URL_CONFIG", { expiresInSec: "30" }).replace("usePresignedUrlConfig = False", "usePresignedUrlConfig = True"), /PRESIGNED_URL_CONFIG\.expiresInSec: 30 must be a whole number from 60 to 3600/);
	refused(edited("ALARM_CONFIG_DownloadTimeUpperLimitAlarm", { period: "90" }), /ALARM_CONFIG_DownloadTimeUpperLimitAlarm\.period: 90 must be 10, 20, 30 or a multiple of 60/);
	refused(edited("ALARM_CONFIG_DownloadTimeUpperLimitAlarm", { stat: "p101" }), /\.stat: p101 must be SampleCount, Average, Sum, Minimum, Maximum or p0 to p100/);
	refused(edited("ALARM_CONFIG_DownloadTimeUpperLimitAlarm", { datapointsToAlarm: "6" }), /\.datapointsToAlarm: 6 must be a whole number from 1 to 5/);
	// PutMetricAlarm: Period × EvaluationPeriods at most one day for periods under an hour, 7 days otherwise.
	refused(edited("ALARM_CONFIG_DownloadTimeUpperLimitAlarm", { period: "60", evaluationPeriods: "1441", datapointsToAlarm: "3" }), /\.evaluationPeriods: 1441 periods of 60 s span 86460 s, over the 86400 s aws allows for periods under an hour/);
	refused(edited("ALARM_CONFIG_DownloadTimeUpperLimitAlarm", { period: "3600", evaluationPeriods: "169" }), /\.evaluationPeriods: 169 periods of 3600 s span 608400 s, over the 604800 s/);
	for (const [period, evaluationPeriods] of [["3600", "48"], ["10", "8640"], ["20", "5"], ["30", "5"], ["86400", "7"]])
		assert.is(parseDeploymentConfig(edited("ALARM_CONFIG_DownloadTimeUpperLimitAlarm", { period, evaluationPeriods }), "dev.ini").alarms[0].periodSeconds, Number(period));
	refused(edited("ALARM_CONFIG_DownloadTimeUpperLimitAlarm", { snsTopics: Array.from({ length: 6 }, (_, n) => `arn:aws:sns:us-east-1:123456789012:t${n}`).join(",") }), /\.snsTopics: 6 topics: an alarm action list holds at most 5/);
	refused(edited("DEFAULT", { targetSelection: "ONCE" }), /DEFAULT\.targetSelection: ONCE must be SNAPSHOT or CONTINUOUS/);
});

test("every error of a file is reported at once, each with file:line and key", () => {
	const text = edited("DEFAULT", { rounds: "zero", debug: "maybe", colour: "blue" }).replace("incrementFactor = 2.0", "incrementFactor = 9").replace("[TIMEOUT_CONFIG]", "[TIMEOUT_CONFIG]\nstray line");
	const found = problems(text);
	assert.ok(found.length >= 5 && found.every((problem) => /^dev\.ini:\d+: /.test(problem)), found.join("\n"));
	assert.ok(found.some((problem) => /^dev\.ini:\d+: "stray line" has no "=" or ":"/.test(problem)), found.join("\n"));
	assert.ok(found.some((problem) => /^dev\.ini:\d+: DEFAULT\.colour: unknown key/.test(problem)), found.join("\n"));
	assert.ok(found.some((problem) => /^dev\.ini:\d+: DEFAULT\.rounds: zero must be a whole number/.test(problem)), found.join("\n"));
	assert.ok(found.some((problem) => /^dev\.ini:\d+: DEFAULT\.debug: maybe is not a boolean/.test(problem)), found.join("\n"));
	assert.ok(found.some((problem) => /^dev\.ini:\d+: EXP_RATE_CONFIG\.incrementFactor: 9 must be from 1\.1 to 5/.test(problem)), found.join("\n"));
	assert.throws(() => parseIni("[A]\nstray\n[A]\nx\n", "dev.ini"), (error: Error) => error.message === 'dev.ini:2: "stray" has no "=" or ":"\ndev.ini:3: duplicate section [A]\ndev.ini:4: "x" has no "=" or ":"');
});

test("a section's missing key falls back to DEFAULT, as configparser does", () => {
	const config = parseDeploymentConfig(rehearsal.replace("usePresignedUrlConfig = False", "usePresignedUrlConfig = True").replace("roleArn = arn:aws:iam::123456789012:role/ota-signing-role\n", ""), "dev.ini");
	assert.is(config.presignedUrlConfig?.roleArn, "arn:aws:iam::123456789012:role/ota-stream-role");
});

test("thing lists: ARNs, names, groups, comments; duplicates and junk refused with the line", () => {
	const targets = parseThingList("# fleet\narn:aws:iot:us-east-1:123456789012:thing/a-1\nb_2, c:3\n\narn:aws:iot:eu-west-1:123456789012:thinggroup/g\n", "t.txt");
	assert.equal(targets.map((target) => [target.kind, target.name, target.arn !== undefined, target.line]), [
		["thing", "a-1", true, 2], ["thing", "b_2", false, 3], ["thing", "c:3", false, 3], ["thinggroup", "g", true, 5],
	]);
	assert.throws(() => simulatedThings(targets, "t.txt"), /t\.txt:5: thing group g cannot be simulated/);
	assert.equal(simulatedThings(targets.slice(0, 3), "t.txt"), ["a-1", "b_2", "c:3"]);
	assert.throws(() => parseThingList("a\nb\na\n", "t.txt"), /t\.txt:3: thing a is listed twice/);
	assert.throws(() => parseThingList("a/b\n", "t.txt"), /t\.txt:1: a\/b is neither a thing name nor/);
	assert.throws(() => parseThingList("# nothing\n", "t.txt"), /t\.txt: no things listed/);
	assert.equal(numberedThings(3), ["thing-0001", "thing-0002", "thing-0003"]);
	assert.is(numberedThings(12345)[0], "thing-00001");
	assert.is(parseThingList(fs.readFileSync(`${examples}thingsList.txt`, "utf8"), "thingsList.txt").length, 12);
});

test.run();

// The downloadTime alarms: CloudWatch's evaluation of a PutMetricAlarm document (a statistic per clock-aligned
// period, M of the last N periods breaching, missing periods counting neither way, the alarm's dimensions), and
// the rehearsal agreeing with AWS: for the same executions, the documents and the Lambda code `--target aws`
// writes give the same data and the same alarm states as the simulator's report.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import * as vm from "node:vm";
import { fileURLToPath } from "node:url";
import { evaluateAlarm, statistic, type MetricAlarm } from "../host-sim/fleet/alarms";
import { awsDeployment, metricAlarm, packageVersion, type Package } from "../tools/fleet/aws-documents";
import { parseDeploymentConfig, validStat, type AlarmRule } from "../tools/fleet/deployment-config";
import { downloadTimeMetric, type JobExecutionEvent, type MetricDatum } from "../tools/fleet/download-metric";
import { parseThingList } from "../tools/fleet/things";
import { buildReport, executionEvents } from "../host-sim/fleet/report";
import type { BoardDetail, FleetRun } from "../host-sim/fleet/fleet-sim";
import type { Execution, ExecutionStatus } from "../host-sim/fleet/rollout";
import { makeAppImage } from "../host-sim/image";
import { defaultFaults } from "../host-sim/fleet/faults";

const rule: AlarmRule = {
	name: "slow", namespace: "IoT:OTA:JobExecution", metricName: "downloadTime", stat: "p99", periodSeconds: 60, threshold: 100,
	type: "upper", evaluationPeriods: 5, datapointsToAlarm: 3, snsTopics: [],
};
const alarm = metricAlarm(rule, "job-1") as unknown as MetricAlarm;
const base = Date.UTC(2026, 0, 1, 12, 0, 0);
const datum = (minute: number, value: number, jobId = "job-1"): MetricDatum =>
	({ MetricName: "downloadTime", Dimensions: [{ Name: "jobId", Value: jobId }], Timestamp: base + minute * 60_000 + 1_000, Value: value, Unit: "Seconds" });
const evaluate = (document: MetricAlarm, data: MetricDatum[], minutes: number) => evaluateAlarm(document, downloadTimeMetric.namespace, data, base, base + minutes * 60_000);

test("statistics: the simple ones and nearest-rank percentiles; the stats PutMetricAlarm takes", () => {
	const values = Array.from({ length: 100 }, (_, index) => 100 - index);
	assert.equal(["p0", "p50", "p90", "p99", "p100", "p99.5", "Average", "Sum", "SampleCount", "Minimum", "Maximum"].map((stat) => statistic(values, stat)),
		[1, 50, 90, 99, 100, 100, 50.5, 5050, 100, 1, 100]);
	assert.is(statistic([7], "p99"), 7);
	assert.equal(["p100", "p0.5", "p99.99", "Sum", "p101", "p99.999", "P50", "avg", "p"].map(validStat), [true, true, true, true, false, false, false, false, false]);
	assert.throws(() => statistic([], "p50"), /no values/);
});

test("M of N: ALARM once 3 of the last 5 periods breach; missing periods count neither way; all missing is INSUFFICIENT_DATA", () => {
	const evaluation = evaluate(alarm, [datum(0, 50), datum(1, 150), datum(1, 20), datum(3, 200), datum(4, 120)], 10);
	assert.equal(evaluation.periods.map((period) => [period.value, period.breaching]), [
		[50, false], [150, true], [undefined, false], [200, true], [120, true], [undefined, false], [undefined, false], [undefined, false], [undefined, false], [undefined, false],
	]);
	assert.equal(evaluation.transitions, [{ atSeconds: 60, state: "OK" }, { atSeconds: 300, state: "ALARM" }, { atSeconds: 420, state: "OK" }, { atSeconds: 600, state: "INSUFFICIENT_DATA" }]);
	assert.is(evaluation.firstAlarmSeconds, 300);
});

test("only data of the alarm's dimensions, metric and unit count; periods align to the clock", () => {
	const other = [datum(0, 500, "job-2"), datum(1, 500, "job-2"), datum(2, 500, "job-2"), { ...datum(3, 500), Unit: "Milliseconds" }, { ...datum(3, 500), MetricName: "other" }];
	assert.is(evaluate(alarm, other, 5).state, "INSUFFICIENT_DATA");
	assert.is(evaluate(alarm, [datum(0, 500), datum(1, 500), datum(2, 500)], 5).state, "ALARM");
	// Started 30 s into a minute: the first period is the clock's minute, half of it before the start.
	const late = evaluateAlarm(alarm, "IoT:OTA:JobExecution", [datum(0, 500)], base + 30_000, base + 90_000);
	assert.equal(late.periods.map((period) => period.startSeconds), [-30, 30]);
	const lower = metricAlarm({ ...rule, type: "lower", stat: "Average", evaluationPeriods: 2, datapointsToAlarm: 2 }, "job-1") as unknown as MetricAlarm;
	assert.equal(evaluate(lower, [datum(0, 40), datum(1, 100)], 2).transitions, [{ atSeconds: 60, state: "OK" }]);
	assert.equal(evaluate(lower, [datum(0, 40), datum(1, 60), datum(1, 80)], 2).transitions, [{ atSeconds: 60, state: "OK" }, { atSeconds: 120, state: "ALARM" }]);
	assert.is(evaluate(alarm, [datum(0, 100)], 1).state, "OK", "at the threshold is not above it");
});

// One round of 12 executions, as the rollout ledger holds them: each ends at `minute`, reporting `downloadTime`.
const examples = fileURLToPath(new URL("../tools/fleet/examples/", import.meta.url));
const config = parseDeploymentConfig(fs.readFileSync(`${examples}rehearsal.ini`, "utf8"), `${examples}rehearsal.ini`);
const outcomes: [ExecutionStatus, number, string | undefined][] = [
	["SUCCEEDED", 0.5, "40.000"], ["SUCCEEDED", 1.2, "700.500"], ["FAILED", 1.5, "650.000"], ["SUCCEEDED", 2.1, "900.250"], ["REJECTED", 2.2, undefined],
	["TIMED_OUT", 2.5, undefined], ["SUCCEEDED", 3.4, "620.000"], ["SUCCEEDED", 4.9, "30.125"], ["SUCCEEDED", 5.5, "20.000"], ["SUCCEEDED", 6.5, undefined],
	["SUCCEEDED", 7.5, "25.000"], ["CANCELED", 7.6, undefined],
];
const run: FleetRun = {
	epochMs: base,
	document: {},
	rounds: [{
		round: 1, jobId: "esp32-fw-2_0_0", startMs: 0, failed: true,
		rollout: {
			notNotified: [], batches: [], abort: undefined, endMs: 9 * 60_000,
			executions: outcomes.map(([status, minute, downloadTime], index): Execution<BoardDetail> => ({
				thing: `esp32-${index}`, status, notifiedAtMs: 0, startedAtMs: 1000, endedAtMs: minute * 60_000, lateStatus: undefined,
				detail: { statusDetails: downloadTime === undefined ? { state: "0" } : { state: "0", downloadTime } } as unknown as BoardDetail,
			})),
		},
	}],
};

test("the rehearsal's alarms and AWS's agree: same data from the same events, same states, from the written documents and the Lambda's code", async () => {
	const image = makeAppImage({ size: 20_000, version: "2.0.0" });
	const pkg: Package = { bytes: image, fileName: "test.bin", version: packageVersion(image, "test.bin"), form: "fota", fileId: 1, signature: undefined, custom: {} };
	const { files } = awsDeployment(config, parseThingList(fs.readFileSync(`${examples}thingsList.txt`, "utf8"), "thingsList.txt"), pkg, "/fw/test.bin");

	// AWS: the Lambda function of the monitor stack, run on each event with a stand-in CloudWatch client.
	const stack = JSON.parse(files.get("monitor-stack.json")!);
	const rule = stack.Resources.JobExecutionRule.Properties.TopicRulePayload;
	assert.is(rule.Sql, "SELECT * FROM '$aws/events/jobExecution/#'");
	const function_ = stack.Resources.MetricFunction.Properties;
	assert.equal([function_.Runtime, function_.Handler], ["nodejs20.x", "index.handler"]);
	const put: { Namespace: string; MetricData: (MetricDatum & { Timestamp: Date })[] }[] = [];
	const sdk = { CloudWatchClient: class { async send(command: { input: (typeof put)[number] }) { put.push(command.input); } }, PutMetricDataCommand: class { constructor(readonly input: unknown) {} } };
	const module = { exports: {} as { handler: (event: JobExecutionEvent) => Promise<unknown> } };
	vm.runInNewContext(function_.Code.ZipFile, { require: (name: string) => (name === "@aws-sdk/client-cloudwatch" ? sdk : undefined), module, exports: module.exports });
	const events = executionEvents(run);
	assert.is(events.length, 12);
	for (const event of events) await module.exports.handler(event);
	assert.ok(put.every((each) => each.Namespace === "IoT:OTA:JobExecution"));
	const awsData: MetricDatum[] = put.flatMap((each) => each.MetricData.map((one) => ({ ...one, Timestamp: one.Timestamp.getTime() })));
	// SUCCEEDED and FAILED executions that reported a downloadTime, at the events' times.
	assert.equal(awsData.map((one) => [one.Value, (one.Timestamp - base) / 60_000]), [[40, 0.5], [700.5, 1.2], [650, 1.5], [900.25, 2.1], [620, 3.4], [30.125, 4.9], [20, 5.5], [25, 7.5]]);
	assert.ok(awsData.every((one) => one.Dimensions.length === 1 && one.Dimensions[0].Name === "jobId" && one.Dimensions[0].Value === "esp32-fw-2_0_0" && one.Unit === "Seconds"));

	// The alarm documents as written, evaluated over AWS's data; the rehearsal's report over its own.
	const written = JSON.parse(files.get("alarm-DownloadTimeUpperLimitAlarm.json")!) as MetricAlarm;
	assert.equal(written.Dimensions, [{ Name: "jobId", Value: "esp32-fw-2_0_0" }]);
	const aws = evaluateAlarm(written, "IoT:OTA:JobExecution", awsData, base, base + 9 * 60_000);
	const report = buildReport(run, { config, pkg, boards: 12, concurrency: 1, faults: defaultFaults, wallMs: 1, peakRssBytes: 1 });
	const [simulated] = report.alarms;
	assert.equal(simulated.document, written);
	assert.equal([simulated.state, simulated.transitions, simulated.firstAlarmSeconds], [aws.state, aws.transitions, aws.firstAlarmSeconds]);
	// p99 > 600 s in 3 of 5 one-minute periods: minutes 1, 2 and 3 breach: ALARM at the end of minute 3, OK once
	// the window (minutes 2 to 6) holds only two of them.
	assert.equal(aws.transitions, [{ atSeconds: 60, state: "OK" }, { atSeconds: 240, state: "ALARM" }, { atSeconds: 420, state: "OK" }]);
});

test.run();

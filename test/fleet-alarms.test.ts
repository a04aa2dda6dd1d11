// ALARM_CONFIG alarms as CloudWatch evaluates them: a statistic per period, M of the last N periods breaching,
// missing periods counting neither way, upper and lower thresholds.

import { test } from "uvu";
import * as assert from "uvu/assert";
import { evaluateAlarm, statistic, validStat, type AlarmRule } from "../host-sim/fleet/alarms";

const rule: AlarmRule = {
	name: "slow", namespace: "IoT:OTA:JobExecution", metricName: "downloadTime", stat: "p99", periodSeconds: 60, threshold: 100,
	type: "upper", evaluationPeriods: 5, datapointsToAlarm: 3, snsTopics: [],
};
const at = (minute: number, value: number) => ({ atMs: minute * 60_000 + 1_000, value });

test("statistics: the simple ones and nearest-rank percentiles", () => {
	const values = Array.from({ length: 100 }, (_, index) => 100 - index);
	assert.equal(["p0", "p50", "p90", "p99", "p100", "p99.5", "Average", "Sum", "SampleCount", "Minimum", "Maximum"].map((stat) => statistic(values, stat)),
		[1, 50, 90, 99, 100, 100, 50.5, 5050, 100, 1, 100]);
	assert.is(statistic([7], "p99"), 7);
	assert.equal(["p100", "p0.5", "Sum", "p101", "P50", "avg", "p"].map(validStat), [true, true, true, false, false, false, false]);
	assert.throws(() => statistic([], "p50"), /no values/);
});

test("M of N: ALARM once 3 of the last 5 periods breach; missing periods count neither way; all missing is INSUFFICIENT_DATA", () => {
	const points = [at(0, 50), at(1, 150), at(1, 20), at(3, 200), at(4, 120)];
	const evaluation = evaluateAlarm(rule, points, 10 * 60_000);
	assert.equal(evaluation.periods.map((period) => [period.value, period.breaching]), [
		[50, false], [150, true], [undefined, false], [200, true], [120, true], [undefined, false], [undefined, false], [undefined, false], [undefined, false], [undefined, false],
	]);
	assert.equal(evaluation.transitions, [{ atSeconds: 60, state: "OK" }, { atSeconds: 300, state: "ALARM" }, { atSeconds: 420, state: "OK" }, { atSeconds: 600, state: "INSUFFICIENT_DATA" }]);
	assert.is(evaluation.firstAlarmSeconds, 300);
	assert.is(evaluation.state, "INSUFFICIENT_DATA");
});

test("a lower threshold breaches below it; a datapoint exactly at the threshold breaches neither way", () => {
	const lower = { ...rule, type: "lower" as const, stat: "Average", evaluationPeriods: 2, datapointsToAlarm: 2 };
	assert.equal(evaluateAlarm(lower, [at(0, 40), at(1, 100)], 120_000).transitions, [{ atSeconds: 60, state: "OK" }]);
	assert.equal(evaluateAlarm(lower, [at(0, 40), at(1, 60), at(1, 80)], 120_000).transitions, [{ atSeconds: 60, state: "OK" }, { atSeconds: 120, state: "ALARM" }]);
	assert.equal(evaluateAlarm(rule, [at(0, 100)], 60_000).state, "OK");
	assert.equal(evaluateAlarm(rule, [], 0).state, "INSUFFICIENT_DATA");
});

test.run();

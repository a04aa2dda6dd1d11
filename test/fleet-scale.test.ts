// The "done when", at full size: 1,000 simulated boards with a 256 KiB image. An exponential rollout
// completes; with 15% of the boards failing their self-test and an abort threshold of 10% the job is canceled at
// the right moment. About five minutes on two cores, so it runs only with FLEET_SCALE=1
// (FLEET_SCALE=1 node --import ./host-sim/register.mjs test/fleet-scale.test.ts); fleet-sim.test.ts runs the same
// checks on 60 boards in every npm test.

import { test } from "uvu";
import * as assert from "uvu/assert";
import * as fs from "node:fs";
import { packageVersion, type Package } from "../tools/fleet/aws-documents";
import { parseDeploymentConfig } from "../tools/fleet/deployment-config";
import { defaultFaults } from "../host-sim/fleet/faults";
import { simulateFleet } from "../host-sim/fleet/fleet-sim";
import { buildReport } from "../host-sim/fleet/report";
import { numberedThings } from "../tools/fleet/things";
import { makeAppImage } from "../host-sim/image";
import { tempDir } from "./support/sim";

const boards = 1000;
const bytes = makeAppImage({ size: 256 * 1024, version: "2.0.0" });
const pkg: Package = { bytes, fileName: "fw.bin", version: packageVersion(bytes, "fw.bin"), form: "fota", fileId: 1, signature: undefined, custom: {} };
const ini = (abort: string) => `[DEFAULT]
jobId = fleet-1000
streamId = fleet-1000-stream
useJobExecutionsRolloutConfig = True
useAbortConfig = ${abort ? "True" : "False"}
[JOB_EXECUTE_ROLLOUT_CONFIG]
maximumPerMinute = 400
useExponentialRateCfg = True
[EXP_RATE_CONFIG]
baseRatePerMinute = 25
incrementFactor = 2
useRateIncreaseCriteria = True
[INCREASE_CRITERIA]
numberOfNotifiedThings = 50
${abort}`;

async function rollout(abort: string, selfTestFailShare: number) {
	const config = parseDeploymentConfig(ini(abort), "scale.ini");
	const faults = { ...defaultFaults, selfTestFailShare };
	const started = performance.now();
	const boardsDir = tempDir("fleet-scale");
	const run = await simulateFleet({ config, things: numberedThings(boards), pkg, publicKey: undefined, faults, boardsDir, concurrency: 16 }).finally(() => fs.rmSync(boardsDir, { recursive: true, force: true }));
	const report = buildReport(run, { config, pkg, boards, concurrency: 16, faults, wallMs: performance.now() - started, peakRssBytes: process.resourceUsage().maxRSS * 1024 });
	console.log(`${report.outcome} (${report.wall.seconds} s, ${report.wall.boardsPerSecond} boards/s, peak RSS ${(report.wall.peakRssBytes / 1048576).toFixed(0)} MiB)`);
	return report.rounds[0];
}

if (process.env.FLEET_SCALE === "1") {
	test("1,000 boards, exponential rate: the rollout completes with every board on the new image", async () => {
		const round = await rollout("", 0);
		assert.is(round.outcome, "succeeded", round.why);
		assert.is(round.counts.SUCCEEDED, boards);
		// 25 a minute until 50 are notified, then ×2 for every further 50, up to 400.
		assert.equal(round.batches.map((batch) => [batch.ratePerMinute, batch.notified]), [[25, 25], [25, 25], [50, 50], [100, 100], [400, 400], [400, 400]]);
		assert.ok(round.executions.every((execution) => execution.firmware === "2.0.0"));
	});

	test("1,000 boards, 15% failing their self-test, abort at 10%: canceled at the first moment the rule holds", async () => {
		const round = await rollout("[ABORT_CONFIG]\nuseFailedSubsection = True\n[ABORT_CONFIG_TYPE_FAILED]\nfailureType = FAILED\nthresholdPercentage = 10\nminNumberOfExecutedThings = 100\n", 0.15);
		assert.is(round.outcome, "aborted");
		const abort = round.abort!;
		const ended = round.executions.filter((execution) => execution.status !== "CANCELED" && execution.endedAtSeconds !== undefined);
		for (const moment of new Set(ended.map((execution) => execution.endedAtSeconds!).filter((seconds) => seconds < abort.atSeconds))) {
			const before = ended.filter((execution) => execution.endedAtSeconds! <= moment);
			const failures = before.filter((execution) => execution.status === "FAILED").length;
			assert.not.ok(before.length >= 100 && failures * 10 >= before.length, `the rule already held at ${moment} s`);
		}
		assert.ok(abort.completed >= 100 && abort.failures * 10 >= abort.completed);
		assert.ok(round.executions.every((execution) => execution.notifiedAtSeconds <= abort.atSeconds));
		assert.ok(round.counts.NOT_NOTIFIED > 0);
		assert.match(round.why, /abort rule FAILED ≥ 10% after at least 100 completed executions was met by \d+ FAILED of \d+ completed/);
	});
}

test.run();

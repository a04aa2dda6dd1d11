import { startAwsIot } from "../host-sim/server/aws-iot";
import { makeAppImage, sha256Hex } from "../host-sim/image";
import { run, tempDir } from "../test/support/sim";
const aws = await startAwsIot({});
const image = makeAppImage({ size: 16 * 4096 + 1008, version: "2.0.0" });
const cases: Record<string, (m: Uint8Array) => Uint8Array> = {
	deepJson: () => Buffer.from(`${"[".repeat(5000)}${"]".repeat(5000)}`),
	deepJson200: () => Buffer.from(`${"[".repeat(200)}${"]".repeat(200)}`),
	deepJson1000: () => Buffer.from(`${"[".repeat(1000)}${"]".repeat(1000)}`),
	deepObj2000: () => Buffer.from(`${'{"a":'.repeat(2000)}1${"}".repeat(2000)}`),
	badUtf8: (m) => Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), m]),
};
let n = 0;
for (const [name, make] of Object.entries(cases)) {
	const thing = `p-${++n}`;
	aws.createJob(thing, { image, form: "fota", version: "2.0.0" });
	aws.faults.corruptBlocks = (b) => b.topic.includes(`/${thing}/`) ? [make(b.message), b.message] : undefined;
	try {
		const o = await run({ dir: tempDir("b"), engine: "xs", mqtt: aws.url, thing, config: { blockTimeoutMs: 200 } });
		console.log(name, o.end, o.result, o.running.sha256 === sha256Hex(image));
	} catch (e) { console.log(name, "ERROR", (e as Error).message); }
}
await aws.close();
{
	const aws2 = await startAwsIot({});
	const job = aws2.createJob("deepjob", { image, form: "fota", version: "2.0.0" });
	let deep: unknown = 1;
	for (let i = 0; i < 4500; i++) deep = [deep];
	job.execution.jobDocument = { ...(job.execution.jobDocument as object), x: deep };
	try {
		const o = await run({ dir: tempDir("b"), engine: "xs", mqtt: aws2.url, thing: "deepjob", config: { blockTimeoutMs: 200 } });
		console.log("deep job", o.end, o.result, aws2.executions("deepjob")[0].status);
	} catch (e) { console.log("deep job", "ERROR", (e as Error).message); }
	await aws2.close();
}

/*
	RAM bench only (never in the product): the XS machine's own heap counters, for the Linux simulator build.
	Moddable's "instrumentation" module reports the slot and chunk heaps on devices only; on lin its getters
	are not registered. Returns [slots in use, chunk bytes in use, slots reserved, chunk bytes reserved,
	highest slots in use, highest chunk bytes in use], the highest since the previous call (then reset).
	With a true argument it collects garbage first, so "in use" is what is alive.
*/

#include "xsAll.h"
#include "xsmc.h"

void xs_ota_ram_heap(xsMachine *the)
{
	txMachine *machine = (txMachine *)the;
	txInteger values[6];
	int i;

	if ((xsmcArgc > 0) && xsmcTest(xsArg(0)))
		xsCollectGarbage();
	values[0] = (txInteger)machine->currentHeapCount;
	values[1] = (txInteger)machine->currentChunksSize;
	values[2] = (txInteger)machine->maximumHeapCount;
	values[3] = (txInteger)machine->maximumChunksSize;
	values[4] = (txInteger)machine->peakHeapCount;
	values[5] = (txInteger)machine->peakChunksSize;
	machine->peakHeapCount = machine->currentHeapCount;
	machine->peakChunksSize = machine->currentChunksSize;

	xsmcVars(1);
	xsmcSetNewArray(xsResult, 6);
	for (i = 0; i < 6; i++) {
		xsmcSetInteger(xsVar(0), values[i]);
		xsmcSetIndex(xsResult, i, xsVar(0));
	}
}

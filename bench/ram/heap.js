// RAM bench only: see heap.c.
function heap(collect) @ "xs_ota_ram_heap";
export default heap;

"""The shuffle: partition, sort, combine and spill map output; fetch, merge and group it for reducers.

Map side: ``sort.MapOutputBuffer`` collects pairs in a byte-bounded buffer,
combines and spills sorted runs (``spill``), and merges them into one file
with a segment per partition.  Reduce side: ``merge.merge_segments`` k-way
merges a partition's segments from every map and groups equal keys.
"""

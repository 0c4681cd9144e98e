"""``lela explore``: design-space exploration of accelerator configurations on a Dask cluster
(grid: lela.explore.grid; cache: .cache; cluster: .engine; one point's measurements: .measure;
tables and Pareto plots: .report; the whole run: .run)."""

"""What a run folder becomes once measured: the summary tables, the charts, the capacity model,
meta.json and the executed notebook, each drawn from the folder's files alone."""

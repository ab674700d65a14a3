"""The analyzer: from a trace directory to DataFrames, reports and exports."""

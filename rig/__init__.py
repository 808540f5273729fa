"""What starts and measures processes, for the bench, the demo and the tests alike: free ports,
private redis-server, Redis Cluster and PostgreSQL servers, an app under uvicorn, the load
generators (Locust, wrk) and the CPU meters. It knows nothing of what a run measures."""

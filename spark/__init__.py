"""Apache Spark as the engine of the dbt project (docs/engines.md): its environment and tools."""

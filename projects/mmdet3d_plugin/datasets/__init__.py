"""nuScenes datasets, info conversion, the generated nuScenes world, pipelines, samplers and evaluation."""

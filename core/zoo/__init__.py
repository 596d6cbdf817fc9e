"""The backbone zoo: timm catalog, measurements, Pareto frontiers, compound scaling, recommender, worker."""

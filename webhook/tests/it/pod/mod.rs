mod pruned;

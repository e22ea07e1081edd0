"""Label write-back to GitHub: plan.py decides from the database, apply.py writes."""

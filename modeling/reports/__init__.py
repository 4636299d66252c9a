"""Reports (issue 10): a portfolio's stored results as a PDF, an HTML page, a CSV or a workbook.

`data` reads what the batch stored into a `document.Document`, `charts` draws its charts with
matplotlib, `renderers` writes the document in each format, `services` queues and runs a
`modeling.models.Report`, and `modeling.tasks.generate_report` is the Celery task.
"""

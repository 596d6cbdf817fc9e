# Archscope, following Streamlit's Docker guidance: slim Python base, non-root user, health check.
FROM python:3.11-slim

RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
RUN useradd --create-home archscope && chown -R archscope /app
RUN mkdir /data && chown archscope /data
USER archscope
ENV ARCHSCOPE_DATA_DIR=/data
# runs, measurements and uploads: mount a volume here (docker run -v archscope-data:/data) to keep them
VOLUME ["/data"]

EXPOSE 8501
HEALTHCHECK CMD curl --fail http://localhost:8501/_stcore/health || exit 1
ENTRYPOINT ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0", \
            "--browser.serverAddress=localhost"]

# Image for the ingest worker and the API (docker-compose.yml runs both from it).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY mhhs ./mhhs
COPY contract ./contract
COPY lakehouse ./lakehouse
COPY ingest ./ingest
COPY access ./access
COPY api ./api
COPY quality ./quality
COPY market ./market
COPY devstack ./devstack
COPY notebooks ./notebooks
RUN pip install --no-cache-dir -c constraints.txt .
ENV MHHS_WAREHOUSE=/data/warehouse
ENTRYPOINT ["mhhs"]
CMD ["--help"]

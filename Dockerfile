# A minimal image: the static runferry binary on a distroless base, as a
# non-root user. Build with: docker build -t runferry .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/runferry ./cmd/runferry

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/runferry /usr/local/bin/runferry
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/runferry"]

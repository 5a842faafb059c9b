-- AlterTable
ALTER TABLE "ApiToken" ADD COLUMN "expiresAt" DATETIME;
ALTER TABLE "ApiToken" ADD COLUMN "profiles" TEXT;

-- CreateTable
CREATE TABLE "AuditCheckpoint" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "eventCount" INTEGER NOT NULL,
    "headHash" TEXT NOT NULL,
    "at" DATETIME NOT NULL,
    "body" TEXT NOT NULL,
    "signature" BLOB NOT NULL,
    "signerSerialHex" TEXT NOT NULL
);

-- CreateIndex
CREATE INDEX "AuditCheckpoint_eventCount_idx" ON "AuditCheckpoint"("eventCount");

-- AlterTable
ALTER TABLE "CertificateAuthority" ADD COLUMN     "keyState" TEXT NOT NULL DEFAULT 'active',
ADD COLUMN     "keyStateAt" TIMESTAMP(3);

-- CreateTable
CREATE TABLE "KeyStateEvent" (
    "id" SERIAL NOT NULL,
    "caId" TEXT NOT NULL,
    "from" TEXT,
    "to" TEXT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL,
    "actor" TEXT NOT NULL,
    "reason" TEXT,

    CONSTRAINT "KeyStateEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Custodian" (
    "name" TEXT NOT NULL,
    "credential" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL,
    "removedAt" TIMESTAMP(3),

    CONSTRAINT "Custodian_pkey" PRIMARY KEY ("name")
);

-- CreateTable
CREATE TABLE "QuorumRequest" (
    "id" TEXT NOT NULL,
    "operation" TEXT NOT NULL,
    "hash" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "usedAt" TIMESTAMP(3),

    CONSTRAINT "QuorumRequest_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "QuorumApproval" (
    "requestId" TEXT NOT NULL,
    "custodian" TEXT NOT NULL,
    "approvedAt" TIMESTAMP(3) NOT NULL,
    "signature" TEXT,

    CONSTRAINT "QuorumApproval_pkey" PRIMARY KEY ("requestId","custodian")
);

-- CreateIndex
CREATE INDEX "KeyStateEvent_caId_id_idx" ON "KeyStateEvent"("caId", "id");

-- CreateIndex
CREATE INDEX "QuorumRequest_hash_idx" ON "QuorumRequest"("hash");

-- AddForeignKey
ALTER TABLE "QuorumApproval" ADD CONSTRAINT "QuorumApproval_requestId_fkey" FOREIGN KEY ("requestId") REFERENCES "QuorumRequest"("id") ON DELETE CASCADE ON UPDATE CASCADE;
